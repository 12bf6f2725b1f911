"""Configuration shared by every hf_zsl method."""

from transformers import CLIPConfig, PreTrainedConfig

from .prompting import PIPELINE_HYPOTHESIS_TEMPLATE, TemplateIds, template_token_ids


class HfZslConfig(PreTrainedConfig):
    """Base configuration: the frozen encoder's config inline, where its weights come from, and
    the token-level prompting every method shares.

    Args:
        clip_config (`dict` or `CLIPConfig`): configuration of the frozen dual encoder, inline so the
            model builds offline. ``text_config.eos_token_id`` must be the real end-of-text id
            (CLIP pools text at that token).
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
    """

    sub_configs_defaults = {"clip_config": CLIPConfig}

    clip_config: dict | CLIPConfig | None = None
    base_model_name_or_path: str | None = None
    base_model_revision: str | None = None
    base_weights_included: bool = False
    templates: list | None = None
    template_token_ids: list | None = None
    hypothesis_token_ids: list | None = None
    saved_state_sha256: str | None = None

    @property
    def method(self) -> str:
        """The method's short name, e.g. ``"zeroshot"`` for model type ``"hfzsl_zeroshot"``."""
        return self.model_type.removeprefix("hfzsl_")

    def set_prompting(self, tokenizer, templates: list[str] | None) -> None:
        """Store ``templates`` and their token ids (and the pipeline hypothesis ids) using ``tokenizer``."""
        if templates is not None:
            if isinstance(templates, str) or not templates:
                raise ValueError("templates must be a non-empty list of strings, each with one '{}'.")
            self.templates = list(templates)
            self.template_token_ids = [template_token_ids(tokenizer, t) for t in templates]
        self.hypothesis_token_ids = template_token_ids(tokenizer, PIPELINE_HYPOTHESIS_TEMPLATE)

    @property
    def prompt_ids(self) -> list[TemplateIds]:
        return self.template_token_ids or [[[], []]]
