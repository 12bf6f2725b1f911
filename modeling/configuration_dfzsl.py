"""Configuration of DFZSL (data-free generalised zero-shot learning, Tang et al., AAAI 2024)."""

from .configuration_coop import CoOpConfig


class DFZSLConfig(CoOpConfig):
    """DFZSL: FLPT prompt context + image-side residual + a cosine classifier over seen and new classes.

    The prompt side is CoOp's unified context (4 tokens initialised from ``"a photo of a"``, the
    prompt ``[SOS] ctx_1 .. ctx_4 <label> . [EOS]``); see :class:`CoOpConfig` for those fields.

    Args:
        residual_weight (`float`): λ of the image-side residual ``x' = x + λ·r`` (0.005 in the
            official code), where ``r`` is the mean over the context tokens of the ``t2i`` MLP.
        t2i_expansion (`int`): hidden width of the ``t2i`` MLP as a multiple of the text width
            (4: 512 → 2048 → 512 for ViT-B/16).
        temperature (`float`): the cosine classifier's temperature; scores are ``cos(x', w_c) / T``
            (0.01 in the official code, i.e. CLIP's logit scale of 100).
        seen_class_names (`list[str]`, *optional*): the classes the server classifier knew (set by
            training; the rest of ``class_names`` were synthesised).
        simulator_kappa (`float`, *optional*): the vMF concentration training used (recorded).
    """

    model_type = "hfzsl_dfzsl"

    n_ctx: int = 4
    ctx_init: str | None = "a photo of a"
    residual_weight: float = 0.005
    t2i_expansion: int = 4
    temperature: float = 0.01
    seen_class_names: list | None = None
    simulator_kappa: float | None = None
