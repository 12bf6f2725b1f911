"""Configuration of CFZSL, the collaborative CLIP + CNN framework for zero-shot learning
(Yang et al., "Application of CLIP for efficient zero-shot learning", Multimedia Systems 2024)."""

from transformers import AutoConfig, PreTrainedConfig

from .configuration_base import HfZslConfig


def default_cnn_config() -> dict:
    """A tiny ResNet (3 stages of one basic block, 32/64/128 channels, ~0.3 M parameters): trains on
    32 px images on a CPU in seconds per epoch. Real benchmarks start from a pretrained ResNet-101
    instead (``cnn_pretrained="microsoft/resnet-101"``)."""
    return {
        "model_type": "resnet",
        "embedding_size": 32,
        "hidden_sizes": [32, 64, 128],
        "depths": [1, 1, 1],
        "layer_type": "basic",
    }


def cnn_config_from_dict(cnn_config: dict | PreTrainedConfig | None) -> PreTrainedConfig:
    """The CNN's ``transformers`` config from its dict form (``model_type`` picks the class)."""
    if isinstance(cnn_config, PreTrainedConfig):
        return cnn_config
    fields = dict(cnn_config or default_cnn_config())
    model_type = fields.pop("model_type", None)
    if not model_type:
        raise ValueError("cnn_config needs a 'model_type' (e.g. 'resnet') to pick the backbone class.")
    fields.pop("transformers_version", None)
    return AutoConfig.for_model(model_type, **fields)


class CFZSLConfig(HfZslConfig):
    """CFZSL: a trainable CNN predicts class attributes, a frozen CLIP gives universal image and text
    features, and both meet in one combined semantic space.

    For an image ``x`` with CNN attribute predictions ``â(x)`` `(A,)` and frozen CLIP feature ``f(x)``
    `(dim,)`, and a class ``y`` with attributes ``a_y`` `(A,)` and CLIP text feature ``t_y`` `(dim,)`:
    ``ψ(x) = [â(x); Q f(x)]``, ``φ(y) = [a_y; P t_y]`` (both `(A + D,)`) and the score is
    ``gamma · cos(ψ(x), φ(y)) − calibration · [y is seen]``.

    Args:
        cnn_config (`dict`, *optional*): the trainable backbone's ``transformers`` config as a dict with
            its ``model_type`` (built with ``AutoModel.from_config``); ``None`` means
            :func:`default_cnn_config`.
        cnn_pretrained (`str`, *optional*): the Hub id / folder the backbone's initial weights came from
            (e.g. ``"microsoft/resnet-101"``); recorded for provenance, the checkpoint holds the trained weights.
        cnn_image_size (`int`, *optional*): side the images are resized to (bilinear) for the CNN; ``None``
            means twice the CLIP image size (the CNN sees finer detail than CLIP's patches, as attribute
            ZSL models feed 448 px to the CNN next to CLIP's 224 px); ``0`` keeps the CLIP processor's size.
        semantic_dim (`int`, *optional*): ``D``, the width of the CLIP part of the semantic space
            (``Q``, ``P``: projection_dim → D); ``None`` means the CLIP projection dim.
        gamma (`float`): scale of the cosine scores.
        calibration (`float`): calibrated stacking, subtracted from the scores of the seen classes so
            predicting over seen and unseen classes together is not biased towards the seen ones;
            chosen on validation classes by fitting, 0 for no calibration.
        class_attributes (`list[list[float]]`, *optional*): one row of ``A`` attribute values per entry
            of ``class_names`` (``None`` for a class without attributes yet).
        attribute_names (`list[str]`, *optional*): the ``A`` attribute names (sizes the attribute head).
        seen_class_names (`list[str]`, *optional*): the classes training saw images of (the ones
            ``calibration`` applies to).
        attribute_loss_weight (`float`): ``μ``, weight of the attribute branch's own classification loss in
            training (cross-entropy of ``gamma · cos(â(x), a_y)`` over the seen classes), which makes the
            CNN learn the attributes instead of leaving the seen classes to the CLIP branch.
        triplet_weight (`float`): ``λ``, weight of the batch-hard triplet loss on ``ψ(x)`` in training.
        triplet_margin (`float`): ``m``, its margin (on L2-normalised ``ψ``).
        pk_classes (`int`): ``P``, classes per training batch.
        pk_images (`int`): ``K``, images of each class per training batch.
        augment_images (`bool`): train the CNN on a fresh random resized crop + horizontal flip of each
            image at every step (the CLIP features stay those of the plain images).
        backbone_lr_scale (`float`, *optional*): the backbone's learning rate relative to the heads';
            ``None`` means 1 for a randomly initialised backbone and 0.1 for a pretrained one.
        calibration_validation (`dict`, *optional*): how fitting chose ``calibration`` (the held-out
            validation classes and the validation seen / unseen accuracies and harmonic mean).
    """

    model_type = "hfzsl_cfzsl"
    card_excluded_fields = ("class_attributes",)  # a classes × attributes matrix: in config.json only

    cnn_config: dict | None = None
    cnn_pretrained: str | None = None
    cnn_image_size: int | None = None
    semantic_dim: int | None = None
    gamma: float = 16.0
    calibration: float = 0.0
    class_attributes: list | None = None
    attribute_names: list | None = None
    seen_class_names: list | None = None
    attribute_loss_weight: float = 1.0
    triplet_weight: float = 1.0
    triplet_margin: float = 0.3
    pk_classes: int = 16
    pk_images: int = 4
    augment_images: bool = True
    backbone_lr_scale: float | None = None
    calibration_validation: dict | None = None
