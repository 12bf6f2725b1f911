"""Fitting RTOS: train the anchor tokens and the RTM (few-shot mode), then choose alpha and tau on validation.

Presets (:mod:`hf_zsl.presets`); RTOS publishes no code, so ``paper`` is a reconstruction:

- ``paper``: anchors = ``open_semantics`` (2115 class names of ImageNet-1k and the other CoOp datasets) minus
  the target classes, the paper's "cross-dataset category list"; training borrows Tip-Adapter-F's budget
  (:data:`~hf_zsl.presets.TIP_F_BUDGET`), the baseline the paper compares with (an assumption).
- ``embedded``: the shapes world's attribute words as anchors (the model's default vocabulary) and the
  settings tuned for the embedded tiny bases.
"""

from __future__ import annotations

import itertools
import time

from ..modeling.modeling_rtos import RTOSModel
from ..presets import EMBEDDED, PAPER, TIP_F_BUDGET, Presets
from ..protocols import TrainingView
from ..training import (
    FitSettings, LabelledFeatures, accuracy_on_features, augmented_training_views, best_index, on_training_device,
    run_settings, train_on_features,
)
from ..vocabularies import exclude, load_vocabulary

DEFAULTS = FitSettings(epochs=20, batch_size=128, learning_rate=1e-2)
PRESETS = Presets({EMBEDDED: DEFAULTS, PAPER: TIP_F_BUDGET})


def build_hyperparameters(preset: str, class_names=None) -> dict:
    """The anchor vocabulary under ``preset``: ``open_semantics`` without the target classes for ``paper``;
    the model's default (shapes) vocabulary for ``embedded``."""
    if preset == PAPER:
        return {"anchor_vocabulary": exclude(load_vocabulary("open_semantics"), class_names or [])}
    return {}
# Fusion weights of the RTM output (0: zero-shot CLIP alone) and relation temperatures, searched on
# validation data after training; the first wins ties, so plain zero-shot wins unless the RTM helps.
ALPHA_GRID = (0.0, 0.125, 0.25, 0.5, 1.0, 2.0)
TAU_GRID = (0.05, 0.1, 0.2, 0.5, 1.0)


def select_alpha_tau(model: RTOSModel, val: LabelledFeatures) -> tuple[float, float, float]:
    """Set ``config.alpha`` / ``config.tau`` to the grid point best on ``val``; returns (alpha, tau, accuracy)."""
    grid = list(itertools.product(ALPHA_GRID, TAU_GRID))
    scores = []
    for alpha, tau in grid:
        model.config.alpha, model.config.tau = alpha, tau
        scores.append(accuracy_on_features(model, val))
    best = best_index(scores)
    model.config.alpha, model.config.tau = grid[best]
    return (*grid[best], scores[best])


@on_training_device
def fit(model: RTOSModel, view: TrainingView, settings: FitSettings | None = None) -> dict:
    """Few-shot mode: train the anchor tokens and RTM projections with cross-entropy at the configured
    ``alpha`` / ``tau``; both modes: then choose ``alpha`` and ``tau`` on ``view.val``.

    ``settings`` default to :data:`DEFAULTS` seeded with the protocol's seed (:func:`~hf_zsl.training.run_settings`).

    Returns:
        ``{"mode", "alpha", "tau", "val_accuracy", "train_seconds"}`` (seconds of training and selection, image features cached).
    """
    settings = settings or run_settings(DEFAULTS, view)
    if view.val is None:
        raise ValueError("RTOS chooses alpha and tau on validation data: use a protocol with a validation split.")
    val = LabelledFeatures.of(model, view.val, view.train_class_names, view.label_column)
    train = LabelledFeatures.of(model, view.train, view.train_class_names, view.label_column)
    start = time.perf_counter()
    if model.config.mode == "few_shot":
        train_on_features(model, train, settings, views=augmented_training_views(model, view.train, settings))
    alpha, tau, accuracy = select_alpha_tau(model, val)
    return {
        "mode": model.config.mode,
        "alpha": alpha,
        "tau": tau,
        "val_accuracy": accuracy,
        "train_seconds": time.perf_counter() - start,
    }
