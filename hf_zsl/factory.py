"""``hf_zsl.build``: the one factory every entry point uses."""

from __future__ import annotations

import json
import os

from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer, PreTrainedModel

from .modeling.encoders import encoder_class
from .modeling.modeling_base import EMBEDDED_BASE, EMBEDDED_FOLDERS, HfZslPreTrainedModel, resolve_base_path
from .registry import get_method
from .templates import resolve_templates


def folder_model_type(folder: str) -> str | None:
    """The ``model_type`` in ``folder/config.json`` (``None`` when there is no such file).

    Raises:
        ValueError: naming the file, when it is not readable JSON (a truncated or damaged download).
    """
    path = os.path.join(folder, "config.json")
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as handle:
            return json.load(handle).get("model_type")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as error:
        raise ValueError(f"{path} is not a readable JSON config ({error}); download or save the model again.") from None


def is_hf_zsl_type(model_type: str | None) -> bool:
    """Whether ``model_type`` names a saved hf_zsl model (every method's is ``hfzsl_<method>``)."""
    return bool(model_type) and model_type.startswith("hfzsl_")


def _load_dual_encoder(base: str, path: str) -> PreTrainedModel:
    """The complete dual encoder ``base`` names, found at ``path`` (:func:`resolve_base_path`).

    Refuses a saved hf_zsl model, a model of an unsupported family (naming the supported ones) and a
    checkpoint missing tower weights (loading any of them would silently train and score on randomly
    initialised towers)."""
    model_type = folder_model_type(path) if os.path.isdir(path) else None
    if is_hf_zsl_type(model_type):
        raise ValueError(
            f"{base} is a saved hf_zsl model ({model_type}), not a CLIP base. Load it with "
            f"AutoModelForZeroShotImageClassification.from_pretrained (hf-zsl eval --model {base}), or build on "
            "the base named by its config's base_model_name_or_path."
        )
    config = AutoConfig.from_pretrained(path)
    encoder = encoder_class(config.model_type)
    model, loading = encoder.model_class.from_pretrained(path, output_loading_info=True)
    missing = loading["missing_keys"]
    if missing:
        raise ValueError(
            f"{base} is not a complete {encoder.display_name} checkpoint: {len(missing)} weights are missing "
            f"(e.g. {sorted(missing)[:3]}) and would be random. Pass a complete dual-encoder folder, a Hub id or "
            "'embedded' / 'embedded-siglip'."
        )
    return model


def load_base(base: str | PreTrainedModel, tokenizer=None, image_processor=None):
    """``(model, tokenizer, image_processor, name_or_path)`` for a folder, Hub id, ``"embedded"``,
    ``"embedded-siglip"`` or model.

    A model instance (``CLIPModel``, ``SiglipModel``, …) needs its ``tokenizer`` and ``image_processor``
    passed along unless its ``name_or_path`` points at them.
    """
    if isinstance(base, PreTrainedModel):
        encoder_class(getattr(base.config, "model_type", None))
        name = base.config.name_or_path or None
        model = base
    elif isinstance(base, str):
        name = base
        path = resolve_base_path(base)
        if os.path.isabs(os.path.expanduser(base)) or base.startswith(("./", "../")):
            if not os.path.isdir(os.path.expanduser(path)):
                raise ValueError(f"The base folder {base} does not exist; pass a folder, a Hub id or 'embedded'.")
        if base in EMBEDDED_FOLDERS and not os.path.isdir(path):
            raise ValueError(f"The embedded base {base!r} is missing from this installation (looked in {path}).")
        model = _load_dual_encoder(base, path)
    else:
        raise TypeError(
            "base must be a folder, a Hub id, 'embedded', 'embedded-siglip' or a dual-encoder model "
            f"(CLIPModel, SiglipModel, …), got {type(base).__name__}."
        )
    if tokenizer is None or image_processor is None:
        if name is None:
            raise ValueError("Pass tokenizer= and image_processor= along with a base model that has no name_or_path.")
        source = resolve_base_path(name)
        tokenizer = tokenizer or AutoTokenizer.from_pretrained(source)
        image_processor = image_processor or AutoImageProcessor.from_pretrained(source)
    rows = model.text_model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise ValueError(
            f"The tokenizer has {len(tokenizer)} tokens but the base's text tower embeds {rows}: they do not belong "
            "together. Pass the base's own tokenizer (tokenizer=AutoTokenizer.from_pretrained(<base folder>))."
        )
    return model, tokenizer, image_processor, name


def build(
    method: str,
    base: str | PreTrainedModel = EMBEDDED_BASE,
    *,
    tokenizer=None,
    image_processor=None,
    revision: str | None = None,
    preset: str | None = None,
    **hyperparameters,
) -> HfZslPreTrainedModel:
    """A fresh, untrained ``method`` model over the frozen ``base`` encoder.

    Args:
        method: a registered method name (``hf_zsl.METHODS``), e.g. ``"zeroshot"``.
        base: a folder, a Hub id, ``"embedded"`` (the shipped tiny CLIP), ``"embedded-siglip"`` (the
            shipped tiny SigLIP) or a dual-encoder model of a supported family
            (``hf_zsl.modeling.encoders.SUPPORTED_MODEL_TYPES``: CLIP, MetaCLIP 2, SigLIP, SigLIP 2, Chinese-CLIP).
        tokenizer, image_processor: override (or supply, for a bare ``CLIPModel``) the base's.
        revision: Hub revision of the base, recorded in the config.
        preset: the method's preset (:mod:`hf_zsl.presets`; ``None``: the base's default), which sets the
            defaults a build depends on (RTOS's anchor vocabulary, CCLI's concept bank); ``hyperparameters``
            given here win.
        **hyperparameters: the method's configuration; ``templates`` takes a set name
            (``"imagenet7"``), one template string or a list.

    Example:
        >>> model = hf_zsl.build("zeroshot", "embedded", templates="imagenet7")
    """
    entry = get_method(method)
    name = entry.check_run(base, preset)
    if entry.build_hyperparameters is not None:
        hyperparameters = entry.build_hyperparameters(name, hyperparameters.get("class_names")) | hyperparameters
    encoder, tokenizer, image_processor, name = load_base(base, tokenizer, image_processor)
    if "templates" in hyperparameters:
        hyperparameters["templates"] = resolve_templates(hyperparameters["templates"])
    model = entry.model_class_for(encoder).from_base(
        encoder, tokenizer, image_processor, base_model_name_or_path=name or "", base_model_revision=revision,
        **hyperparameters,
    )
    if name is not None:
        model.config._name_or_path = resolve_base_path(name)
    return model.eval()
