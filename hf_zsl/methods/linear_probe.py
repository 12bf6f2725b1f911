"""Fitting the linear probe: cosine classifier on cached features, regularisation chosen on validation."""

from __future__ import annotations

import torch

from ..presets import EMBEDDED, Presets
from ..modeling.modeling_linear_probe import LinearProbeModel
from ..protocols import TrainingView
from ..training import FitSettings, LabelledFeatures, accuracy_on_features, keep_best_run, on_training_device, run_settings, train_on_features

DEFAULTS = FitSettings(epochs=30, batch_size=256, learning_rate=1e-3)
PRESETS = Presets({EMBEDDED: DEFAULTS})
# Strengths of the pull towards the zero-shot initialisation, lambda * ||W - W0||^2 (0: plain probe).
REGULARISATION_GRID = (0.0, 0.01, 0.1, 1.0)


@on_training_device
def fit(model: LinearProbeModel, view: TrainingView, settings: FitSettings | None = None) -> dict:
    """Train the probe once per regularisation strength; keep the best on ``view.val``.

    ``settings`` default to :data:`DEFAULTS` seeded with the protocol's seed (:func:`~hf_zsl.training.run_settings`).

    Returns:
        ``{"regularization": chosen strength, "val_accuracy": its score, "train_seconds": total}``.
    """
    settings = settings or run_settings(DEFAULTS, view)
    train = LabelledFeatures.of(model, view.train, view.train_class_names, view.label_column)
    if view.val is None:
        raise ValueError("The linear probe chooses its regularisation on validation data: use a protocol with a validation split.")
    val = LabelledFeatures.of(model, view.val, view.train_class_names, view.label_column)

    def run(strength: float) -> float:
        model.reset_class_weights()
        anchor = model.class_weights.detach().clone()

        def penalty(module) -> torch.Tensor:
            return strength * (module.class_weights - anchor).pow(2).sum()

        return train_on_features(model, train, settings, penalty=penalty if strength else None)

    strength, score, seconds = keep_best_run(model, REGULARISATION_GRID, run, lambda: accuracy_on_features(model, val))
    model.config.regularization = strength
    return {"regularization": strength, "val_accuracy": score, "train_seconds": seconds}
