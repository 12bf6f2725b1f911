"""Configuration of the linear probe on frozen CLIP image features."""

from .configuration_base import HfZslConfig


class LinearProbeConfig(HfZslConfig):
    """Linear probe: one weight vector per trained class over normalised image features.

    Args:
        regularization (`float`, *optional*): strength of the pull towards the initial weights,
            ``regularization * ||W - W0||^2``, chosen on the protocol's validation split and recorded here.
        init_from_text (`bool`): start the class weights at the classes' zero-shot text features
            (default) instead of zeros.
    """

    model_type = "hfzsl_linear_probe"

    regularization: float | None = None
    init_from_text: bool = True
