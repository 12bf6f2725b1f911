"""Zero-shot CLIP: label features are the normalised mean of template-prompt features."""

from .configuration_zeroshot import ZeroShotCLIPConfig, ZeroShotSiglipConfig
from .modeling_base import HfZslPreTrainedModel


class ZeroShotCLIPModel(HfZslPreTrainedModel):
    """Zero-shot CLIP (Radford et al., 2021) with prompt ensembling.

    Each label is written into every template, encoded by the frozen text tower, L2-normalised,
    averaged over templates and normalised again; images are scored by scaled cosine similarity.
    Nothing is trained, so the default checkpoint holds no tensors: only the config (templates and
    their token ids) and a pointer to the base weights.
    """

    config_class = ZeroShotCLIPConfig
    default_templates = ["a photo of a {}."]


class ZeroShotSiglipModel(ZeroShotCLIPModel):
    """Zero-shot over a SigLIP-family base: the same model, scored with one sigmoid per label by the
    stock pipeline (see :class:`~.configuration_zeroshot.ZeroShotSiglipConfig`)."""

    config_class = ZeroShotSiglipConfig
