"""Fitting the linear probe on cached features, in the model's form (``config.form``).

Presets (:mod:`hf_zsl.presets`):

- ``paper``: the CLIP paper's probe as CoOp's ``lpclip`` runs it (``docs/official_recipes.md`` §3): the
  ``logistic`` form, a scikit-learn logistic regression on the raw image embeddings, ``C`` chosen on the
  validation split by lpclip's sweep and ``search_steps`` bisection steps (:mod:`.lpclip`).
- ``embedded``: the ``cosine`` form trained by AdamW, the pull towards the zero-shot weights chosen on
  validation from :data:`REGULARISATION_GRID`.

The form is part of the model, so a build picks it from the preset (:func:`build_hyperparameters`).
"""

from __future__ import annotations

import dataclasses
import time

import torch

from ..modeling.modeling_linear_probe import LinearProbeModel
from ..presets import EMBEDDED, PAPER, Presets
from ..protocols import TrainingView
from ..training import (
    FitSettings, LabelledFeatures, accuracy_on_features, extend_settings, keep_best_run, on_training_device, run_settings,
    train_on_features,
)
from .lpclip import lpclip_search


@dataclasses.dataclass
class LinearProbeSettings(FitSettings):
    """:class:`~hf_zsl.training.FitSettings` (the cosine form's training) plus the logistic form's search:
    ``search_steps`` bisection steps and ``max_iter`` L-BFGS iterations per fit."""

    search_steps: int = 8
    max_iter: int = 1000


DEFAULTS = LinearProbeSettings(epochs=30, batch_size=256, learning_rate=1e-3)
PRESETS = Presets({EMBEDDED: DEFAULTS, PAPER: DEFAULTS})  # the presets differ in form (build_hyperparameters)
FORM_BY_PRESET = {EMBEDDED: "cosine", PAPER: "logistic"}
# Strengths of the pull towards the zero-shot initialisation, lambda * ||W - W0||^2 (0: plain probe).
REGULARISATION_GRID = (0.0, 0.01, 0.1, 1.0)


def build_hyperparameters(preset: str, class_names=None) -> dict:
    """The probe's form under ``preset``: ``logistic`` for ``paper``, ``cosine`` for ``embedded``."""
    return {"form": FORM_BY_PRESET[preset]}


@on_training_device
def fit(model: LinearProbeModel, view: TrainingView, settings: LinearProbeSettings | None = None) -> dict:
    """Fit the probe in its form on ``view.train``, choosing its regularisation on ``view.val``.

    ``settings`` default to :data:`DEFAULTS` seeded with the protocol's seed (:func:`~hf_zsl.training.run_settings`).

    Returns:
        cosine: ``{"regularization", "val_accuracy", "train_seconds"}``; logistic: ``{"C", "val_accuracy",
        "fitted_C", "train_seconds"}``.
    """
    settings = extend_settings(settings or run_settings(DEFAULTS, view), LinearProbeSettings)
    train = LabelledFeatures.of(model, view.train, view.train_class_names, view.label_column)
    if view.val is None:
        raise ValueError("The linear probe chooses its regularisation on validation data: use a protocol with a validation split.")
    val = LabelledFeatures.of(model, view.val, view.train_class_names, view.label_column)
    if model.config.form == "logistic":
        return fit_logistic(model, train, val, settings)
    return fit_cosine(model, train, val, settings)


def fit_logistic(model: LinearProbeModel, train: LabelledFeatures, val: LabelledFeatures, settings: LinearProbeSettings) -> dict:
    """lpclip's search (:func:`.lpclip.lpclip_search`) on the raw features; loads the kept classifier."""
    start = time.perf_counter()
    numpy = [(data.features.cpu().double().numpy(), data.labels.numpy()) for data in (train, val)]
    choice = lpclip_search(*numpy, steps=settings.search_steps, max_iter=settings.max_iter)
    if len(choice.classifier.classes_) != len(train.class_names):
        raise ValueError(f"The logistic probe needs support images of all {len(train.class_names)} classes.")
    coef, intercept = torch.from_numpy(choice.classifier.coef_), torch.from_numpy(choice.classifier.intercept_)
    if coef.shape[0] == 1:  # scikit-learn's binary case: one row for class 1 (softmax of [0, z] = sigmoid z)
        coef, intercept = torch.cat([torch.zeros_like(coef), coef]), torch.cat([torch.zeros_like(intercept), intercept])
    model.set_logistic(coef, intercept)
    model.config.logistic_c = choice.C
    return {"C": choice.C, "val_accuracy": choice.val_accuracy, "fitted_C": choice.fitted,
            "train_seconds": time.perf_counter() - start}


def fit_cosine(model: LinearProbeModel, train: LabelledFeatures, val: LabelledFeatures, settings: LinearProbeSettings) -> dict:
    """Train the cosine probe once per regularisation strength; keep the best on ``val``."""

    def run(strength: float) -> float:
        model.reset_class_weights()
        anchor = model.class_weights.detach().clone()

        def penalty(module) -> torch.Tensor:
            return strength * (module.class_weights - anchor).pow(2).sum()

        return train_on_features(model, train, settings, penalty=penalty if strength else None)

    strength, score, seconds = keep_best_run(model, REGULARISATION_GRID, run, lambda: accuracy_on_features(model, val))
    model.config.regularization = strength
    return {"regularization": strength, "val_accuracy": score, "train_seconds": seconds}
