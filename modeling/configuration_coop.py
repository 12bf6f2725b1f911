"""Configuration of CoOp (context optimisation, Zhou et al., IJCV 2022)."""

from .configuration_base import HfZslConfig


class CoOpConfig(HfZslConfig):
    """CoOp: the prompt ``[SOS] ctx_1 .. ctx_M <label> . [EOS]`` with M learned context tokens (the label
    at ``class_token_position``).

    The context tokens are placeholder tokens added to the tokenizer (``<|hfzsl_ctx_i|>``, and
    ``<|hfzsl_ctx_c_i|>`` per trained class with class-specific context); their embeddings are PEFT
    trainable tokens.

    Args:
        n_ctx (`int`): number of context tokens M (16 by default; the number of tokens of
            ``ctx_init`` when that is given).
        ctx_init (`str`, *optional*): words whose token embeddings initialise the context (e.g.
            ``"a photo of a"``); otherwise the context starts at seeded N(0, 0.02²) values.
        class_specific_context (`bool`): one context per trained class (CoOp's CSC) instead of one
            unified context shared by all labels.
        class_token_position (`str`): where the label's tokens go, as CoOp's ``CLASS_TOKEN_POSITION``:
            ``"end"`` (after the context, the default), ``"middle"`` (between its two halves, split at
            ``n_ctx // 2``) or ``"front"`` (before it).
        context_seed (`int`): seed of the random initialisation.
        fit_learning_rate (`float`, *optional*): the learning rate training used (chosen on the protocol's
            validation split under the ``embedded`` preset, fixed under ``paper``), recorded here.
        context_token_ids (`list[int]`, *optional*): ids of the shared context placeholders, the
            prompt prefix (set at build time, like the two fields below).
        class_context_token_ids (`list[list[int]]`, *optional*): ids of each trained class's
            context placeholders (class-specific context only).
        context_init_token_ids (`list[int]`, *optional*): token ids of ``ctx_init``.
    """

    model_type = "hfzsl_coop"

    n_ctx: int = 16
    ctx_init: str | None = None
    class_specific_context: bool = False
    class_token_position: str = "end"
    context_seed: int = 0
    fit_learning_rate: float | None = None
    context_token_ids: list | None = None
    class_context_token_ids: list | None = None
    context_init_token_ids: list | None = None
