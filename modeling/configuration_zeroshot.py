"""Configuration of zero-shot CLIP with prompt-template ensembles."""

from .configuration_base import HfZslConfig


class ZeroShotCLIPConfig(HfZslConfig):
    """Zero-shot CLIP: nothing is learned; ``templates`` (one or an ensemble) is the whole method."""

    model_type = "hfzsl_zeroshot"


class ZeroShotSiglipConfig(ZeroShotCLIPConfig):
    """Zero-shot over a sigmoid-scored base (SigLIP, SigLIP 2). The model type names ``siglip`` because
    the stock zero-shot pipeline chooses sigmoid scores by ``"siglip" in config.model_type``: the
    scores stay the base's own where hf_zsl is not installed."""

    model_type = "hfzsl_zeroshot_siglip"
