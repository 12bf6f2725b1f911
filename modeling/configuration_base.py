"""Configuration shared by every hf_zsl method."""

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from .encoder_base import TextLayout
from .prompting import (
    PIPELINE_HYPOTHESIS_TEMPLATE,
    TemplateIds,
    check_template_composes,
    name_token_ids,
    template_token_ids,
)


def class_token_ids(tokenizer, class_names: list[str]) -> list[list[int]]:
    """The label token ids of ``class_names`` (as inside a prompt, special tokens excluded), checked.

    Raises:
        ValueError: unless ``class_names`` is a non-empty list of non-empty strings no two of which
            tokenize alike (``"Red circle"`` and ``"red circle"`` do with a lower-casing tokenizer).
    """
    if isinstance(class_names, str) or not class_names or not all(isinstance(name, str) for name in class_names):
        raise ValueError(f"class_names must be a non-empty list of class-name strings, got {class_names!r}.")
    token_ids = [list(ids) for ids in name_token_ids(tokenizer, class_names)]
    first_seen: dict[tuple, int] = {}
    for position, ids in enumerate(map(tuple, token_ids)):
        if not ids:
            raise ValueError(f"Class name at position {position} is empty.")
        if ids in first_seen:
            raise ValueError(
                f"Class names {class_names[first_seen[ids]]!r} and {class_names[position]!r} tokenize "
                "identically; class names must be distinct."
            )
        first_seen[ids] = position
    return token_ids

class HfZslConfig(PreTrainedConfig):
    """Base configuration: the frozen encoder's config inline, where its weights come from, and
    the token-level prompting every method shares.

    Args:
        base_config (`dict` or `PreTrainedConfig`): configuration of the frozen dual encoder (any
            supported family: its ``model_type`` picks the adapter, see ``encoders.py``), inline so
            the model builds offline.
        text_layout (`dict`): how prompts are laid out as token ids for this base's tokenizer
            (:class:`~.encoder_base.TextLayout`).
        base_model_name_or_path (`str`): where the frozen weights come from — a Hub id, a folder, or
            ``"embedded"`` (the tiny CLIP shipped inside the ``hf_zsl`` package).
        base_model_revision (`str`, *optional*): Hub revision of the base weights.
        base_weights_included (`bool`): whether the checkpoint holds the base weights
            (self-contained folder) or only what the method learned.
        templates (`list[str]`, *optional*): the prompt templates, each with one ``{}``.
        template_token_ids (`list`, *optional*): per template, ``[prefix_ids, suffix_ids]``.
        hypothesis_token_ids (`list`, *optional*): ``[prefix_ids, suffix_ids]`` of the stock
            pipeline's default hypothesis template, stripped from incoming labels.
        saved_state_sha256 (`str`, *optional*): digest of the tensors in the checkpoint, checked on load.
        config_sha256 (`str`, *optional*): digest of the fields that change predictions, checked on load.
        base_weights_sha256 (`str`, *optional*): digest of the base weights the model was saved with (in
            ``base_weights_dtype``), checked when the base is attached at load.
        class_names (`list[str]`, *optional*): the classes a trained method learned something for.
        class_token_ids (`list[list[int]]`, *optional*): their label token ids; call-time labels with
            the same ids use what was learned, other labels fall back to open-vocabulary scoring.
    """

    sub_configs_defaults = {"base_config": SubConfigSpec(config_class=AutoConfig, model_type="clip")}

    base_config: dict | PreTrainedConfig | None = None
    text_layout: dict | None = None
    base_model_name_or_path: str | None = None
    base_model_revision: str | None = None
    base_weights_included: bool = False
    templates: list | None = None
    template_token_ids: list | None = None
    hypothesis_token_ids: list | None = None
    saved_state_sha256: str | None = None
    config_sha256: str | None = None
    base_weights_sha256: str | None = None
    base_weights_dtype: str | None = None
    class_names: list | None = None
    class_token_ids: list | None = None

    def __post_init__(self, **kwargs):
        if "clip_config" in kwargs:
            raise ValueError(
                "This config was saved by hf_zsl before any CLIP-family base could be used (it has clip_config, no "
                "base_config / text_layout). Build the model again with hf_zsl.build(method, base) and retrain or "
                "re-fit it, or load it with the hf_zsl version that saved it."
            )
        super().__post_init__(**kwargs)

    @property
    def method(self) -> str:
        """The method's short name, e.g. ``"zeroshot"`` for model types ``"hfzsl_zeroshot"`` and
        ``"hfzsl_zeroshot_siglip"``."""
        return self.model_type.removeprefix("hfzsl_").removesuffix("_siglip")

    @property
    def layout(self) -> TextLayout:
        """:attr:`text_layout` as a :class:`~.encoder_base.TextLayout`."""
        if self.text_layout is None:
            raise ValueError("This config has no text_layout: build the model with hf_zsl.build(method, base).")
        return TextLayout(**self.text_layout)

    def set_prompting(self, tokenizer, templates: list[str] | None, written: bool = True) -> None:
        """Store ``templates`` and their token ids (and the pipeline hypothesis ids) using ``tokenizer``.

        ``written``: the templates are whole prompts, checked to compose on ids as the tokenizer writes
        them (:func:`~.prompting.check_template_composes`); ``False`` for a template that only closes a
        prompt after learned context (CoOp's).
        """
        if templates is not None:
            if isinstance(templates, str) or not templates:
                raise ValueError("templates must be a non-empty list of strings, each with one '{}'.")
            self.templates = list(templates)
            self.template_token_ids = [template_token_ids(tokenizer, t) for t in templates]
            for template, ids in zip(templates, self.template_token_ids) if written else ():
                check_template_composes(tokenizer, template, ids)
        self.hypothesis_token_ids = template_token_ids(tokenizer, PIPELINE_HYPOTHESIS_TEMPLATE)

    def set_classes(self, tokenizer, class_names: list[str]) -> None:
        """Record the trained classes and their label token ids (``tokenizer`` without special tokens)."""
        self.class_names, self.class_token_ids = list(class_names), class_token_ids(tokenizer, class_names)

    @property
    def prompt_ids(self) -> list[TemplateIds]:
        return self.template_token_ids or [[[], []]]
