"""Configuration of zero-shot CLIP with prompt-template ensembles."""

from .configuration_base import HfZslConfig


class ZeroShotCLIPConfig(HfZslConfig):
    """Zero-shot CLIP: nothing is learned; ``templates`` (one or an ensemble) is the whole method."""

    model_type = "hfzsl_zeroshot"
