"""The supported base families: ``config.model_type`` → adapter (:mod:`.encoder_base`)."""

from .encoder_base import DualEncoder
from .encoder_chinese_clip import ChineseCLIPEncoder
from .encoder_clip import CLIPEncoder, MetaClip2Encoder
from .encoder_siglip import SiglipEncoder
from .encoder_siglip2 import Siglip2Encoder

ENCODERS: dict[str, type[DualEncoder]] = {
    model_type: encoder
    for encoder in (CLIPEncoder, MetaClip2Encoder, SiglipEncoder, Siglip2Encoder, ChineseCLIPEncoder)
    for model_type in encoder.model_types
}
SUPPORTED_MODEL_TYPES = tuple(ENCODERS)


def encoder_class(model_type: str | None) -> type[DualEncoder]:
    """The adapter of a base whose ``config.model_type`` is ``model_type``.

    Raises:
        ValueError: naming the supported families, for any other model type.
    """
    if model_type not in ENCODERS:
        raise ValueError(
            f"hf_zsl cannot use a base of model type {model_type!r}: supported dual-encoder families are "
            f"{', '.join(f'{e.display_name} ({t})' for t, e in ENCODERS.items())}; CLIP-format LAION / DataComp "
            "checkpoints are 'clip'. Pass a folder or Hub id of one of these."
        )
    return ENCODERS[model_type]
