"""Fitting CoOp: the context tokens trained with cross-entropy on cached image features.

A step runs only the text tower (the trained classes' prompts, through the context tokens); the
image features come from the frozen-encoder cache.

Presets (:mod:`hf_zsl.presets`):

- ``paper``: CoOp's official recipe (``docs/official_recipes.md`` §1): SGD (lr 0.002, momentum 0.9,
  weight decay 5e-4), batch 32 (last incomplete batch dropped), Dassl's per-epoch cosine behind one
  constant warm-up epoch at 1e-5, 50 / 100 / 200 epochs for 1 / 2–4 / 8+ shots, no gradient clipping,
  no learning-rate search, the last epoch kept; training views are random resized crops (scale 0.08–1)
  + flips, :data:`PAPER_VIEWS` cached views per image (epoch ``e`` reads view ``e mod`` that), fp16 on a GPU.
- ``embedded``: the settings tuned for the embedded tiny bases: full-batch AdamW (a step costs one
  text-tower pass over the trained classes' prompts whatever the batch), 50 epochs, the learning rate
  chosen on the protocol's validation split from ``learning_rate ×`` :data:`LEARNING_RATE_SCALES`.
"""

from __future__ import annotations

import dataclasses

from ..modeling.modeling_coop import CoOpModel
from ..presets import EMBEDDED, PAPER, Presets
from ..protocols import TrainingView
from ..training import (
    EPOCH_COSINE, FitSettings, LabelledFeatures, accuracy_on_features, augmented_training_views, extend_settings,
    keep_best_run, on_training_device, run_settings, train_on_features, used_precision,
)


@dataclasses.dataclass
class CoOpSettings(FitSettings):
    """:class:`~hf_zsl.training.FitSettings` plus ``lr_search``: train once per learning rate of
    ``learning_rate ×`` :data:`LEARNING_RATE_SCALES` and keep the best on validation (``False``: train
    once at ``learning_rate`` and keep the last epoch, as CoOp does)."""

    lr_search: bool = True


DEFAULTS = CoOpSettings(epochs=50, batch_size=1024, learning_rate=2e-3)
LEARNING_RATE_SCALES = (1.0, 5.0)  # the learning rates tried: settings.learning_rate times each
PAPER_VIEWS = 50  # cached augmented views per support image under `paper` (CoOp draws a new one every step)


def paper_epochs(shots: int | None) -> int:
    """CoOp's epochs by shot count (``COOP.md``): 50 for 1 shot, 100 for 2–4, 200 for 8, 16 or more / all.
    (CoOp trains ImageNet 50 epochs at every shot count; pass ``settings: {epochs: 50}`` there.)"""
    if shots is not None and shots <= 1:
        return 50
    return 100 if shots is not None and shots <= 4 else 200


def paper(view: TrainingView) -> CoOpSettings:
    """CoOp's official recipe for ``view``'s shot count (module docstring)."""
    return CoOpSettings(
        epochs=paper_epochs(view.k), batch_size=32, learning_rate=2e-3, weight_decay=5e-4, optimizer="sgd",
        momentum=0.9, lr_scheduler_type=EPOCH_COSINE, warmup_epochs=1, warmup_lr=1e-5, max_grad_norm=0.0,
        drop_last=True, train_views=PAPER_VIEWS, crop_scale=0.08, precision="fp16", lr_search=False,
    )


PRESETS = Presets({EMBEDDED: DEFAULTS, PAPER: paper})


def validation_accuracy(model: CoOpModel, view: TrainingView) -> float:
    """Accuracy of ``model`` on ``view.val`` over the trained classes."""
    if view.val is None:
        raise ValueError("CoOp chooses its learning rate on validation data: use a protocol with a validation split.")
    return accuracy_on_features(model, LabelledFeatures.of(model, view.val, view.train_class_names, view.label_column))


@on_training_device
def fit(model: CoOpModel, view: TrainingView, settings: CoOpSettings | None = None) -> dict:
    """Train the context from its initialisation: once per learning rate, keeping the best on ``view.val``
    (``settings.lr_search``), or once, keeping the last epoch.

    ``settings`` default to :data:`DEFAULTS` (the ``embedded`` preset) seeded with the protocol's seed
    (:func:`~hf_zsl.training.run_settings`). With ``settings.train_views`` the context trains on that
    many cached augmented views of the support images (seeded with ``settings.seed``).

    Returns:
        ``{"learning_rate", "val_accuracy" (with the search only), "precision", "train_seconds"}``.
    """
    settings = extend_settings(settings or run_settings(DEFAULTS, view), CoOpSettings)
    train = LabelledFeatures.of(model, view.train, view.train_class_names, view.label_column)
    views = augmented_training_views(model, view.train, settings)
    info = {"precision": used_precision(settings)}
    if not settings.lr_search:
        model.reset_context()
        seconds = train_on_features(model, train, settings, views=views)
        model.config.fit_learning_rate = settings.learning_rate
        return {"learning_rate": settings.learning_rate, **info, "train_seconds": seconds}
    rates = [settings.learning_rate * scale for scale in LEARNING_RATE_SCALES]

    def run(rate: float) -> float:
        model.reset_context()
        return train_on_features(model, train, dataclasses.replace(settings, learning_rate=rate), views=views)

    rate, score, seconds = keep_best_run(model, rates, run, lambda: validation_accuracy(model, view))
    model.config.fit_learning_rate = rate
    return {"learning_rate": rate, "val_accuracy": score, **info, "train_seconds": seconds}
