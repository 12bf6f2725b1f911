"""``hf_zsl.build``: the one factory every entry point uses."""

from __future__ import annotations

import os

from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

from .modeling.modeling_base import EMBEDDED_BASE, HfZslPreTrainedModel, resolve_base_path
from .registry import get_method
from .templates import resolve_templates


def load_base(base: str | CLIPModel, tokenizer=None, image_processor=None):
    """``(clip, tokenizer, image_processor, name_or_path)`` for a folder, Hub id, ``"embedded"`` or model.

    A :class:`CLIPModel` instance needs its ``tokenizer`` and ``image_processor`` passed along
    unless its ``name_or_path`` points at them.
    """
    if isinstance(base, CLIPModel):
        name = base.config.name_or_path or None
        clip = base
    elif isinstance(base, str):
        name = base
        path = resolve_base_path(base)
        if base == EMBEDDED_BASE and not os.path.isdir(path):
            raise ValueError(f"The embedded tiny CLIP is missing from this installation (looked in {path}).")
        clip = CLIPModel.from_pretrained(path)
    else:
        raise TypeError(f"base must be a folder, a Hub id, 'embedded' or a CLIPModel, got {type(base).__name__}.")
    if tokenizer is None or image_processor is None:
        if name is None:
            raise ValueError("Pass tokenizer= and image_processor= along with a CLIPModel that has no name_or_path.")
        source = resolve_base_path(name)
        tokenizer = tokenizer or AutoTokenizer.from_pretrained(source)
        image_processor = image_processor or AutoImageProcessor.from_pretrained(source)
    return clip, tokenizer, image_processor, name


def build(
    method: str,
    base: str | CLIPModel = EMBEDDED_BASE,
    *,
    tokenizer=None,
    image_processor=None,
    revision: str | None = None,
    **hyperparameters,
) -> HfZslPreTrainedModel:
    """A fresh, untrained ``method`` model over the frozen ``base`` encoder.

    Args:
        method: a registered method name (``hf_zsl.METHODS``), e.g. ``"zeroshot"``.
        base: a folder, a Hub id, ``"embedded"`` (the shipped tiny CLIP) or a ``CLIPModel``.
        tokenizer, image_processor: override (or supply, for a bare ``CLIPModel``) the base's.
        revision: Hub revision of the base, recorded in the config.
        **hyperparameters: the method's configuration; ``templates`` takes a set name
            (``"imagenet7"``), one template string or a list.

    Example:
        >>> model = hf_zsl.build("zeroshot", "embedded", templates="imagenet7")
    """
    entry = get_method(method)
    clip, tokenizer, image_processor, name = load_base(base, tokenizer, image_processor)
    if "templates" in hyperparameters:
        hyperparameters["templates"] = resolve_templates(hyperparameters["templates"])
    model = entry.model_class.from_base(
        clip, tokenizer, image_processor, base_model_name_or_path=name or "", base_model_revision=revision,
        **hyperparameters,
    )
    if name is not None:
        model.config._name_or_path = resolve_base_path(name)
    return model.eval()
