"""CoOp: learned prompt context on a frozen CLIP, as PEFT trainable tokens on placeholder tokens."""

import copy

import torch

from .configuration_coop import CoOpConfig
from .modeling_base import HfZslPreTrainedModel
from .placeholder_tokens import ADAPTER_NAME, PlaceholderTokens
from .prompting import check_prompt_length, template_token_ids

CONTEXT_INIT_STD = 0.02  # CoOp's random context initialisation, N(0, 0.02²)
CLASS_TOKEN_POSITIONS = ("end", "middle", "front")


def compose_prompt(context: list, label: list, suffix: list, position: str) -> list:
    """A CoOp prompt (special tokens excluded) with the class tokens at ``position``, as CoOp lays it out:
    ``end``: ``ctx_1..ctx_M label suffix``; ``middle``: ``ctx_1..ctx_{M//2} label ctx_{M//2+1}..ctx_M suffix``;
    ``front``: ``label ctx_1..ctx_M suffix``. Works on id lists and on template words alike."""
    if position == "end":
        return [*context, *label, *suffix]
    if position == "middle":
        half = len(context) // 2
        return [*context[:half], *label, *context[half:], *suffix]
    if position == "front":
        return [*label, *context, *suffix]
    raise ValueError(f"class_token_position must be one of {', '.join(CLASS_TOKEN_POSITIONS)}; got {position!r}.")


def placeholder_names(n_ctx: int, num_classes: int) -> tuple[list[str], list[list[str]]]:
    """Names of the shared context tokens and, per class, of the class-specific ones."""
    shared = [f"<|hfzsl_ctx_{i}|>" for i in range(n_ctx)]
    per_class = [[f"<|hfzsl_ctx_{c}_{i}|>" for i in range(n_ctx)] for c in range(num_classes)]
    return shared, per_class


def add_placeholder_tokens(tokenizer, names: list[str]) -> list[int]:
    """Add ``names`` to ``tokenizer`` (in place) as special tokens; return their ids, in order."""
    tokenizer.add_tokens(list(names), special_tokens=True)
    ids = tokenizer.convert_tokens_to_ids(list(names))
    if len(set(ids)) != len(names) or tokenizer.unk_token_id in ids:
        raise ValueError(f"The tokenizer could not give distinct ids to the placeholder tokens {names}.")
    return ids


class CoOpModel(HfZslPreTrainedModel):
    """CoOp (Zhou et al., *Learning to Prompt for Vision-Language Models*, IJCV 2022).

    A label is encoded as ``[SOS] ctx_1 .. ctx_M <label tokens> . [EOS]`` (the base tokenizer's
    special tokens; ``class_token_position`` ``middle`` / ``front`` move the label tokens as CoOp does,
    :func:`compose_prompt`) by the frozen text tower and scored by scaled cosine similarity with the image
    feature. The ``ctx_i`` are placeholder tokens added to the tokenizer; their input embeddings are
    PEFT trainable tokens (:class:`~.placeholder_tokens.PlaceholderTokens`), the only learned state:

    - unified context (default): the M shared placeholders ``<|hfzsl_ctx_i|>``, used by every label;
    - class-specific context: M placeholders ``<|hfzsl_ctx_c_i|>`` per trained class ``c``; a label
      that was not trained gets the mean of the class contexts at the shared placeholders' positions.
    """

    config_class = CoOpConfig
    templates_are_prompts = False  # its template shows where the learned context goes; prompts are laid out by id

    def __init__(self, config: CoOpConfig):
        super().__init__(config)
        ids = [*(config.context_token_ids or []), *(t for ids in config.class_context_token_ids or [] for t in ids)]
        self.context_tokens = PlaceholderTokens(ids, self.encoder.text_width)

    @property
    def context(self) -> torch.Tensor:
        """The learned context: `(n_ctx, hidden_size)` unified, `(num_classes, n_ctx, hidden_size)` class-specific."""
        rows = self.context_tokens.tokens.trainable_tokens_delta[ADAPTER_NAME]
        if self.config.class_specific_context:
            return rows[self.config.n_ctx :].view(-1, self.config.n_ctx, rows.shape[-1])
        return rows

    # ------------------------------------------------------------------ building
    @classmethod
    def from_base(
        cls, base, tokenizer, image_processor, base_model_name_or_path, base_model_revision=None,
        templates=None, class_names=None, **hyperparameters,
    ) -> "CoOpModel":
        """Build as :meth:`HfZslPreTrainedModel.from_base`, adding the context placeholders to a copy
        of ``tokenizer`` and initialising the context (:meth:`reset_context`).

        ``n_ctx`` defaults to ``ctx_init``'s token count when ``ctx_init`` is given; ``templates``
        are not accepted (the learned context replaces them).
        """
        if templates is not None:
            raise ValueError("CoOp learns its prompt context: it takes no templates (see ctx_init).")
        class_specific = hyperparameters.get("class_specific_context", cls.config_class.class_specific_context)
        if class_specific and not class_names:
            raise ValueError("Class-specific context learns one context per class: pass class_names=[...].")
        tokenizer = copy.deepcopy(tokenizer)
        ctx_init = hyperparameters.get("ctx_init", cls.config_class.ctx_init)
        init_ids = tokenizer(ctx_init, add_special_tokens=False)["input_ids"] if ctx_init else None  # the context starts the prompt
        n_ctx = hyperparameters.get("n_ctx", len(init_ids) if init_ids else cls.config_class.n_ctx)
        if init_ids is not None and n_ctx != len(init_ids):
            raise ValueError(f"ctx_init {ctx_init!r} is {len(init_ids)} tokens but n_ctx is {n_ctx}.")
        if n_ctx < 1:
            raise ValueError(f"n_ctx must be at least 1, got {n_ctx}.")
        position = hyperparameters.get("class_token_position", cls.config_class.class_token_position)
        compose_prompt([], [], [], position)  # an unknown position fails before the tokenizer is touched
        shared, per_class = placeholder_names(n_ctx, len(class_names) if class_specific else 0)
        hyperparameters.update(
            n_ctx=n_ctx,
            context_token_ids=add_placeholder_tokens(tokenizer, shared),
            class_context_token_ids=[add_placeholder_tokens(tokenizer, names) for names in per_class] or None,
            context_init_token_ids=init_ids,
        )
        model = super().from_base(
            base, tokenizer, image_processor, base_model_name_or_path, base_model_revision,
            templates=[" ".join(compose_prompt(shared, ["{}"], [], position)) + "."], class_names=class_names,
            **hyperparameters,
        )
        # The context is laid out by id (a tokenizer that keeps the spaces between added tokens as pieces, like
        # Gemma, must not put them into the prompt); the template's text is for reading, its suffix is ".".
        model.config.template_token_ids = [[list(model.config.context_token_ids), template_token_ids(tokenizer, "{}.")[1]]]
        model.reset_context()
        return model

    def reset_context(self) -> None:
        """Every context := the embeddings of the ``ctx_init`` tokens, or N(0, 0.02²) draws seeded
        with ``context_seed`` (shared context first, then each class's)."""
        config = self.config
        embedding = self.encoder.token_embedding.weight
        num_contexts = 1 + len(config.class_context_token_ids or [])
        if config.context_init_token_ids:
            rows = embedding[torch.tensor(config.context_init_token_ids, device=embedding.device)]
            rows = rows.repeat(num_contexts, 1)
        else:
            generator = torch.Generator().manual_seed(config.context_seed)
            rows = torch.randn(num_contexts * config.n_ctx, embedding.shape[1], generator=generator) * CONTEXT_INIT_STD
        self.context_tokens.reset(rows.to(embedding))

    # ------------------------------------------------------------------ features
    def encode_labels(self, labels: list[tuple[int, ...]]) -> torch.Tensor:
        """Normalised features of ``[SOS] context <label> . [EOS]`` per label (the label at
        ``class_token_position``), `(num_labels, dim)`."""
        config = self.config
        check_prompt_length(labels, config.prompt_ids, config.layout)
        indices = self.trained_class_indices(labels) if config.class_specific_context else [None] * len(labels)
        suffix = config.template_token_ids[0][1]
        rows = [
            compose_prompt(
                config.context_token_ids if index is None else config.class_context_token_ids[index],
                label, suffix, config.class_token_position,
            )
            for label, index in zip(labels, indices)
        ]
        learned_rows = None
        if config.class_specific_context and None in indices:
            # an untrained label reads the mean class context at the shared placeholders
            learned_rows = self.context_tokens.rows()
            learned_rows = torch.cat([self.context.mean(dim=0), learned_rows[config.n_ctx :]])
        return self.encode_prompts(rows, self.context_tokens, learned_rows)
