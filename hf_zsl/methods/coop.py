"""Fitting CoOp: the context tokens trained with cross-entropy on cached image features.

A step runs only the text tower (the trained classes' prompts, through the context tokens); the
image features come from the frozen-encoder cache. The paper's SGD (lr 0.002, 200 epochs, batch 32)
would take minutes here; AdamW on large batches reaches a plateau in a few hundred steps, and the
learning rate is chosen on the protocol's validation split.
"""

from __future__ import annotations

import dataclasses

from ..modeling.modeling_coop import CoOpModel
from ..protocols import TrainingView
from ..training import FitSettings, LabelledFeatures, accuracy_on_features, keep_best_run, on_training_device, run_settings, train_on_features

DEFAULTS = FitSettings(epochs=50, batch_size=1024, learning_rate=2e-3)
LEARNING_RATE_SCALES = (1.0, 5.0)  # the learning rates tried: settings.learning_rate times each


def validation_accuracy(model: CoOpModel, view: TrainingView) -> float:
    """Accuracy of ``model`` on ``view.val`` over the trained classes."""
    if view.val is None:
        raise ValueError("CoOp chooses its learning rate on validation data: use a protocol with a validation split.")
    return accuracy_on_features(model, LabelledFeatures.of(model, view.val, view.train_class_names, view.label_column))


@on_training_device
def fit(model: CoOpModel, view: TrainingView, settings: FitSettings | None = None) -> dict:
    """Train the context from its initialisation once per learning rate; keep the best on ``view.val``.

    ``settings`` default to :data:`DEFAULTS` seeded with the protocol's seed (:func:`~hf_zsl.training.run_settings`).

    Returns:
        ``{"learning_rate": chosen, "val_accuracy": its score, "train_seconds": total}``.
    """
    settings = settings or run_settings(DEFAULTS, view)
    train = LabelledFeatures.of(model, view.train, view.train_class_names, view.label_column)
    rates = [settings.learning_rate * scale for scale in LEARNING_RATE_SCALES]

    def run(rate: float) -> float:
        model.reset_context()
        return train_on_features(model, train, dataclasses.replace(settings, learning_rate=rate))

    rate, score, seconds = keep_best_run(model, rates, run, lambda: validation_accuracy(model, view))
    model.config.fit_learning_rate = rate
    return {"learning_rate": rate, "val_accuracy": score, "train_seconds": seconds}
