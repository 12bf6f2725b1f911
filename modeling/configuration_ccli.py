"""Configuration of CCLI, cross-modal concept learning and inference (Zhang et al., arXiv 2307.15460)."""

from .configuration_base import HfZslConfig


class CCLIConfig(HfZslConfig):
    """CCLI: visual concepts mined from few-shot images with text concepts, a concept-activation
    representation, and a concept inference network fused with zero-shot CLIP.

    The shapes of the learned tensors come from ``num_concepts`` and the trained classes only, so a
    checkpoint rebuilds without the data it was fitted on.

    Args:
        num_concepts (`int`): visual concepts kept (rows of ``visual_concepts``); fitting selects
            exactly this many from the text concept bank.
        concepts (`list[str]`, *optional*): the text concept bank (attribute words / phrases). ``None``:
            the shapes world's attribute phrases (``hf_zsl.methods.ccli_concepts.shapes_concepts``).
        concept_template (`str`): the prompt a text concept is written into, with one ``{}``.
        top_k (`int`): support images whose features are averaged into one visual concept.
        beta (`float`): sharpness of the concept activation ``exp(-beta * (1 - cos))``.
        alpha (`float`): weight of the concept inference logits added to the zero-shot logits
            (``0``: zero-shot CLIP).
        selected_concepts (`list[str]`, *optional*): the text concept behind each visual concept,
            recorded by fitting (for reading the model, not needed to run it).
    """

    model_type = "hfzsl_ccli"

    num_concepts: int = 64
    concepts: list | None = None
    concept_template: str = "a photo of the {}."
    top_k: int = 8
    beta: float = 3.0
    alpha: float = 1.0
    selected_concepts: list | None = None
