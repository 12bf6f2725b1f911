"""Fitting CFZSL on a GZSL training view: cross-entropy over the seen classes plus a batch-hard triplet
loss on the image embeddings ψ(x), from P × K batches (images for the CNN, cached CLIP features), and
calibrated stacking chosen on validation classes held out of the seen ones (never on test data)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import datasets
import numpy as np
import torch
import torch.nn.functional as F

from ..calibration import CalibrationChoice, choose_calibration
from ..evaluation import class_logits
from ..losses import batch_hard_triplet_loss
from ..modeling.modeling_cfzsl import CFZSLModel
from ..presets import EMBEDDED, Presets
from ..protocols import ClassAttributes, TrainingView
from ..sampling import PKSampler
from ..training import (
    FitSettings,
    ImageFeatureDataset,
    LabelledFeatures,
    PixelLabelSetCollator,
    on_training_device,
    run_settings,
    run_trainer,
    snapshot,
    training_arguments,
)

# Adam (no weight decay), lr 1e-3 for the heads and — the tiny CNN starting from random weights — for the
# backbone too (a pretrained backbone gets 0.1×, see CFZSLConfig.backbone_lr_scale), cosine schedule, 100
# epochs of about one pass over the seen-class training images each (validation H on the shapes world:
# 0.84 at 60 epochs, 0.89 at 100 and at 150). batch_size is replaced by P × K of the model's config.
DEFAULTS = FitSettings(epochs=100, batch_size=64, learning_rate=1e-3, weight_decay=0.0, logging_steps=10)
PRESETS = Presets({EMBEDDED: DEFAULTS})


def class_attributes_of(view: TrainingView) -> ClassAttributes:
    """The view's class-attribute matrix, or a ``ValueError`` saying what CFZSL needs."""
    try:
        attributes = view.attributes
    except (AttributeError, PermissionError):
        attributes = None
    if attributes is None:
        raise ValueError(
            "CFZSL learns in a class-attribute space: it needs a GZSL training view with a class-attribute matrix "
            "(GZSLProtocol(..., attributes=ClassAttributes(...)); e.g. hf_zsl.shapes.gzsl() or an xlsa17 folder)."
        )
    return attributes


def parameter_groups(model: CFZSLModel, learning_rate: float) -> list[dict]:
    """Adam parameter groups: the heads at ``learning_rate``, the backbone scaled by ``backbone_lr_scale``
    (default 1 for a randomly initialised backbone, 0.1 for a pretrained one)."""
    scale = model.config.backbone_lr_scale
    if scale is None:
        scale = 0.1 if model.config.cnn_pretrained else 1.0
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    backbone = [p for name, p in trainable if name.startswith("cnn.")]
    heads = [p for name, p in trainable if not name.startswith("cnn.")]
    return [{"params": heads, "lr": learning_rate}, {"params": backbone, "lr": learning_rate * scale}]


def auxiliary_loss(model: CFZSLModel, classes: list[str]) -> Callable[[object, dict], torch.Tensor]:
    """What training adds to the model's cross-entropy over ``classes`` (on the combined scores):

    * ``λ`` · batch-hard triplet loss on ``ψ(x)`` (L2-normalised, margin ``m``);
    * ``μ`` · cross-entropy of the attribute branch alone, ``gamma · cos(â(x), a_y)`` over ``classes``.

    Returns ``loss(outputs, inputs)`` for :class:`hf_zsl.training.PenalisedTrainer` (``outputs``: a
    :class:`CFZSLOutput`; ``inputs["labels"]``: `(batch,)` indices into ``classes``).
    """
    config = model.config
    rows = F.normalize(torch.tensor([config.class_attributes[config.class_names.index(c)] for c in classes]), dim=-1)

    def loss(outputs, inputs) -> torch.Tensor:
        labels = inputs["labels"]
        total = config.triplet_weight * batch_hard_triplet_loss(outputs.semantic_image_embeds, labels, config.triplet_margin)
        if config.attribute_loss_weight:
            predicted = F.normalize(outputs.predicted_attributes, dim=-1)
            logits = config.gamma * predicted @ rows.to(predicted).t()
            total = total + config.attribute_loss_weight * F.cross_entropy(logits, labels)
        return total

    return loss


def _rows_of(labels: torch.Tensor, class_ids: Sequence[int]) -> np.ndarray:
    return np.flatnonzero(np.isin(labels.numpy(), list(class_ids)))


def train_on_classes(
    model: CFZSLModel, images: datasets.Dataset, features: LabelledFeatures, classes: list[str], settings: FitSettings
) -> dict:
    """Train ``model`` on the images of ``classes``: cross-entropy among them plus :func:`auxiliary_loss`,
    P × K batches (:class:`PKSampler`), the CNN on (augmented) pixels, CLIP features from the cache.

    Args:
        images: the training images; row ``i`` has cached CLIP feature and label ``features[i]``
            (labels index ``features.class_names``).
        classes: the classes to train on (the model's seen classes for this run).

    Returns:
        ``{"first_loss", "last_loss", "seconds"}`` (the first and last logged training losses).
    """
    config = model.config
    ids = [features.class_names.index(name) for name in classes]
    rows = _rows_of(features.labels, ids)
    position = {class_id: i for i, class_id in enumerate(ids)}
    labels = torch.tensor([position[int(label)] for label in features.labels[rows]])
    data = LabelledFeatures(features.features[rows], labels, list(classes))
    config.seen_class_names, config.calibration = list(classes), 0.0
    sampler = PKSampler(labels.tolist(), config.pk_classes, config.pk_images, seed=settings.seed)
    optimizer = torch.optim.AdamW(
        parameter_groups(model, settings.learning_rate), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    trainer, seconds = run_trainer(
        model,
        training_arguments(dataclasses.replace(settings, batch_size=sampler.batch_size)),
        ImageFeatureDataset(images.select(rows), data, augment_seed=settings.seed if config.augment_images else None),
        PixelLabelSetCollator(model.tokenizer, model.image_processor, classes),
        auxiliary_loss=auxiliary_loss(model, classes),
        train_sampler=sampler,
        optimizers=(optimizer, None),
    )
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {"first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None, "seconds": seconds}


# Share of each validation-seen class's training images held out of the calibration run to score the seen side
# when the protocol has no validation images of those classes (e.g. an xlsa17 folder: val_loc holds only the
# validation classes); the final training still uses every image.
SEEN_HOLD_OUT_FRACTION = 0.2


def held_out_seen_rows(labels: torch.Tensor, class_ids: Sequence[int], fraction: float, seed: int) -> np.ndarray:
    """A seeded ``fraction`` (at least one, never all) of the rows of each class in ``class_ids`` with two or more rows.

    Args:
        labels: `(N,)` class ids of the training rows.

    Returns:
        Sorted row indices into ``labels``.
    """
    rng = np.random.default_rng([seed, 21])
    picked = []
    for class_id in class_ids:
        rows = _rows_of(labels, [class_id])
        if len(rows) >= 2:
            count = min(max(1, round(fraction * len(rows))), len(rows) - 1)
            picked.append(rng.choice(rows, size=count, replace=False))
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


def choose_calibration_on_validation(
    model: CFZSLModel, view: TrainingView, train: datasets.Dataset, features: LabelledFeatures, settings: FitSettings
) -> tuple[CalibrationChoice, str]:
    """Train on the validation-seen classes, then choose the calibration that maximises H of images of
    those classes the run did not train on (seen) against every image of the held-out validation-unseen
    classes (unseen), predicting over all classes.

    The seen side is the protocol's validation images of the validation-seen classes; when it has none
    (no validation split, or one holding only other classes), :data:`SEEN_HOLD_OUT_FRACTION` of their
    training images, kept out of this calibration run.

    Returns:
        The choice and where its seen side came from (``"validation images"`` or ``"held-out training images"``).
    """
    held_out, remaining = list(view.val_unseen_classes), list(view.val_seen_classes)
    if not held_out:
        raise ValueError("The protocol holds out no validation-unseen classes; calibrate=False fits without calibration.")
    names = list(view.train_class_names)
    remaining_ids, held_out_ids = [names.index(c) for c in remaining], [names.index(c) for c in held_out]
    val = view.val
    val_labels = None if val is None else torch.tensor(val[view.label_column])
    seen_val_rows = np.zeros(0, dtype=np.int64) if val is None else _rows_of(val_labels, remaining_ids)
    unseen_parts = [train.select(_rows_of(features.labels, held_out_ids))]
    if val is not None:
        unseen_parts.insert(0, val.select(_rows_of(val_labels, held_out_ids)))
    if len(seen_val_rows):
        source, seen_part = "validation images", val.select(seen_val_rows)
        train_on_classes(model, train, features, remaining, settings)
    else:
        source = "held-out training images"
        kept_out = held_out_seen_rows(features.labels, remaining_ids, SEEN_HOLD_OUT_FRACTION, settings.seed)
        if not len(kept_out):
            raise ValueError(
                "CFZSL calibrates on images of the validation-seen classes it did not train on, and there are none: "
                "give the protocol a validation split, or at least two training images per seen class."
            )
        seen_part = train.select(kept_out)
        rows = np.setdiff1d(np.arange(len(train)), kept_out)
        subset = LabelledFeatures(features.features[rows], features.labels[rows], features.class_names)
        train_on_classes(model, train.select(rows), subset, remaining, settings)
    parts = [seen_part, *unseen_parts]
    logits = torch.cat([class_logits(model, part, names) for part in parts])
    references = np.concatenate([np.asarray(part[view.label_column], dtype=np.int64) for part in parts])
    return choose_calibration(logits, references, remaining_ids), source


@on_training_device
def fit(model: CFZSLModel, view: TrainingView, settings: FitSettings | None = None, calibrate: bool = True) -> dict:
    """Fit CFZSL on a GZSL training view (with class attributes).

    ``settings`` default to :data:`DEFAULTS` seeded with the protocol's seed (:func:`~hf_zsl.training.run_settings`).

    1. The model gets the view's class attributes (every class, seen and unseen) and fresh, seeded
       learned state (a pretrained backbone keeps its weights).
    2. With ``calibrate``: train on the validation-seen classes, choose the calibration on validation
       (:func:`choose_calibration_on_validation`), and return to the initial state.
    3. Train on every seen class and store the calibration (0 without ``calibrate``) in the config.

    Returns:
        ``{"calibration", "val_seen", "val_unseen", "val_harmonic", "val_harmonic_uncalibrated",
        "val_unseen_classes", "first_loss", "last_loss", "train_seconds"}`` (validation entries only
        with ``calibrate``; seconds cover both trainings and the calibration search).
    """
    settings = settings or run_settings(DEFAULTS, view)
    attributes = class_attributes_of(view)
    start = time.perf_counter()
    model.set_class_attributes(attributes.class_names, attributes.matrix, attributes.attribute_names)
    with torch.random.fork_rng():
        torch.manual_seed(settings.seed)
        model.reset_learned_state(reinitialise_cnn=model.config.cnn_pretrained is None)
    initial = snapshot(model)
    train = view.train
    features = LabelledFeatures.of(model, train, view.train_class_names, view.label_column)
    info: dict = {}
    choice = None
    if calibrate:
        choice, seen_source = choose_calibration_on_validation(model, view, train, features, settings)
        uncalibrated = next(row[3] for row in choice.grid if row[0] == 0.0)
        info = {
            "calibration": choice.calibration,
            "val_seen": choice.seen,
            "val_unseen": choice.unseen,
            "val_harmonic": choice.harmonic,
            "val_harmonic_uncalibrated": uncalibrated,
            "val_unseen_classes": list(view.val_unseen_classes),
            "val_seen_source": seen_source,
        }
        model.load_state_dict(initial, strict=False)
    losses = train_on_classes(model, train, features, list(view.seen_classes), settings)
    model.config.calibration = choice.calibration if choice is not None else 0.0
    model.config.calibration_validation = None if choice is None else {
        "val_unseen_classes": info["val_unseen_classes"],
        "seen_source": info["val_seen_source"],
        "seen": choice.seen,
        "unseen": choice.unseen,
        "harmonic": choice.harmonic,
        "harmonic_uncalibrated": info["val_harmonic_uncalibrated"],
    }
    return {
        "calibration": model.config.calibration,
        **info,
        "first_loss": losses["first_loss"],
        "last_loss": losses["last_loss"],
        "train_seconds": time.perf_counter() - start,
    }
