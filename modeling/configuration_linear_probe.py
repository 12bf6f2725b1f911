"""Configuration of the linear probe on frozen CLIP image features."""

from .configuration_base import HfZslConfig

FORMS = ("cosine", "logistic")


class LinearProbeConfig(HfZslConfig):
    """Linear probe: one weight vector per trained class over the frozen image features.

    Args:
        form (`str`): ``"cosine"``: a bias-free cosine classifier on L2-normalised features, in the text
            features' space (trained by AdamW); ``"logistic"``: the CLIP paper's probe, a multinomial
            logistic regression with intercept on the raw (unnormalised) image embeddings, fitted by
            scikit-learn's L-BFGS with the L2 strength ``C`` chosen on validation (CoOp's ``lpclip``).
        regularization (`float`, *optional*): cosine form: strength of the pull towards the initial weights,
            ``regularization * ||W - W0||^2``, chosen on the protocol's validation split and recorded here.
        logistic_c (`float`, *optional*): logistic form: the inverse L2 strength ``C`` chosen on validation.
        init_from_text (`bool`): cosine form: start the class weights at the classes' zero-shot text features
            (default) instead of zeros.
    """

    model_type = "hfzsl_linear_probe"

    form: str = "cosine"
    regularization: float | None = None
    logistic_c: float | None = None
    init_from_text: bool = True
