"""Fitting CCLI: learn visual concepts from the support set, train them and the concept inference
network with cross-entropy on cached features, choose the sharpness β and fusion weight α on validation."""

from __future__ import annotations

import time

import torch

from ..modeling.modeling_ccli import CCLIModel
from ..presets import EMBEDDED, PAPER, TIP_F_BUDGET, Presets
from ..protocols import TrainingView
from ..training import (
    FitSettings, LabelledFeatures, accuracy_on_features, augmented_training_views, best_index, on_training_device,
    run_settings, snapshot, train_on_features,
)
from ..vocabularies import exclude, load_vocabulary
from .ccli_concepts import learn_concepts, shapes_concepts

DEFAULTS = FitSettings(epochs=100, batch_size=1024, learning_rate=1e-1)  # full batch at 16 shots × ≤ 64 classes
PRESETS = Presets({EMBEDDED: DEFAULTS, PAPER: TIP_F_BUDGET})


def build_hyperparameters(preset: str, class_names=None) -> dict:
    """The text concept bank under ``preset``: ``visual_concepts`` without the target classes for ``paper``;
    the shapes world's attribute phrases (:func:`.ccli_concepts.shapes_concepts`) for ``embedded``."""
    if preset == PAPER:
        return {"concepts": exclude(load_vocabulary("visual_concepts"), class_names or [])}
    return {"concepts": shapes_concepts()}
BETA_GRID = (1.0, 3.0, 6.0)  # one training run per sharpness (it shapes what the network learns from)
ALPHA_GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # fusion weights, searched after training (0: zero-shot)


def initialise_concept_branch(model: CCLIModel, train: LabelledFeatures) -> list[str]:
    """Mine and select visual concepts from ``train`` into ``model.visual_concepts``; set the inference
    network to the class prototypes in concept space (each class's mean activation over its support
    images), so the branch starts as a training-free concept classifier. Returns the kept concept names.
    """
    concepts = model.config.concepts or shapes_concepts()
    num_classes = len(train.class_names)
    train = train.to(model.device)
    learned = learn_concepts(model, concepts, train.features, train.labels, num_classes)
    with torch.no_grad():
        model.visual_concepts.copy_(learned.visual)
        activations = model.concept_activations(train.features)
        one_hot = torch.nn.functional.one_hot(train.labels, num_classes).float()
        prototypes = one_hot.t() @ activations / one_hot.sum(dim=0).clamp(min=1).unsqueeze(-1)
        model.concept_inference.weight.copy_(prototypes)
    return learned.names


def choose_alpha(model: CCLIModel, val: LabelledFeatures) -> tuple[float, float]:
    """The fusion weight of :data:`ALPHA_GRID` best on ``val`` (first on ties) and its accuracy; sets it."""
    scores = []
    for alpha in ALPHA_GRID:
        model.config.alpha = alpha
        scores.append(accuracy_on_features(model, val))
    best = best_index(scores)
    model.config.alpha = ALPHA_GRID[best]
    return ALPHA_GRID[best], scores[best]


@on_training_device
def fit(model: CCLIModel, view: TrainingView, settings: FitSettings | None = None) -> dict:
    """Fit CCLI on a few-shot (or domain-shift source) training view.

    For each β of :data:`BETA_GRID`: learn the visual concepts from the support set, initialise the
    inference network, train both with cross-entropy on the fused logits (α = 1), then pick α on
    ``view.val``. The best (β, α) on validation is kept and recorded in the config.

    ``settings`` default to :data:`DEFAULTS` seeded with the protocol's seed (:func:`~hf_zsl.training.run_settings`).

    Returns:
        ``{"beta", "alpha", "val_accuracy", "concepts": kept concept names, "train_seconds"}``.
    """
    settings = settings or run_settings(DEFAULTS, view)
    if view.val is None:
        raise ValueError("CCLI chooses beta and alpha on validation data: use a protocol with a validation split.")
    train = LabelledFeatures.of(model, view.train, view.train_class_names, view.label_column)
    val = LabelledFeatures.of(model, view.val, view.train_class_names, view.label_column)
    views = augmented_training_views(model, view.train, settings)
    start, runs = time.perf_counter(), []
    for beta in BETA_GRID:
        model.config.beta, model.config.alpha = beta, 1.0
        names = initialise_concept_branch(model, train)
        train_on_features(model, train, settings, views=views)
        alpha, accuracy = choose_alpha(model, val)
        runs.append((accuracy, beta, alpha, names, snapshot(model)))
    accuracy, beta, alpha, names, state = runs[best_index([run[0] for run in runs])]
    model.load_state_dict(state, strict=False)
    model.config.beta, model.config.alpha, model.config.selected_concepts = beta, alpha, names
    seconds = time.perf_counter() - start  # concept learning, training and the searches, not feature caching
    return {"beta": beta, "alpha": alpha, "val_accuracy": accuracy, "concepts": names, "train_seconds": seconds}
