"""Fitting Tip-Adapter and Tip-Adapter-F: build the cache from augmented support features, choose
(alpha, beta) on validation, and for -F fine-tune the keys with ``Trainer`` on cached features."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from ..presets import EMBEDDED, Presets
from ..features import image_features
from ..modeling.modeling_tip_adapter import TipAdapterModel
from ..protocols import TrainingView
from ..training import FitSettings, LabelledFeatures, on_training_device, run_settings, snapshot, train_on_features

# Tip-Adapter-F's recipe: AdamW (torch's default weight decay 0.01, as in the official code), lr 1e-3,
# cosine, batch 256. One epoch here is one pass over all cached augmented views (augment_views ×
# support images), so 2 epochs over the default 10 views are the paper's 20 passes over the support set.
DEFAULTS = FitSettings(epochs=2, batch_size=256, learning_rate=1e-3, weight_decay=0.01)
PRESETS = Presets({EMBEDDED: DEFAULTS})
# The grid searched on validation. The paper's ranges (beta ~0.1-12, alpha ~0.1-10) assume CLIP's
# logit scale of 100, so alpha is searched as these ratios times logit_scale / 100. Alpha reaches
# far beyond the paper's range: where zero-shot is worse than chance (a shifted colour space), the
# cache must outweigh it, and validation decides whether it should.
BETA_GRID = (0.25, 0.5, 1.0, 2.0, 3.5, 5.5, 8.0, 12.0)
ALPHA_RATIOS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)


def support_views(model: TipAdapterModel, view: TrainingView) -> torch.Tensor:
    """Features of the support images' augmented views, `(views, images, dim)` (one plain view when
    ``augment_views`` is 0); computed once, then read from the feature cache."""
    views = model.config.augment_views
    seed = model.config.augment_seed
    features = image_features(model, view.train, progress=False, augment_views=views, augment_seed=seed)
    return features if views else features[None]


def choose_alpha_beta(model: TipAdapterModel, val: LabelledFeatures) -> dict:
    """Set ``config.alpha`` / ``config.beta`` to the grid point with the best validation accuracy
    (ties: lower validation cross-entropy, then the earlier grid point).

    The validation labels are the trained classes in order, so the served logits are the zero-shot
    logits plus ``alpha`` times :meth:`TipAdapterModel.cache_logits`: those two are computed once
    (per ``beta``) and combined for every ``alpha``.

    Returns:
        ``{"alpha", "beta", "val_accuracy"}`` of the chosen point.
    """
    labels = [tuple(ids) for ids in model.config.class_token_ids]
    features, targets = val.features.to(model.device), val.labels.to(model.device)
    alphas = torch.tensor(ALPHA_RATIOS, device=model.device) * float(model.logit_scale) / 100
    best = None
    with torch.no_grad():
        zero_shot = model.compute_logits(features, model.label_features(labels), labels, alpha=0.0)
        for beta in BETA_GRID:
            logits = zero_shot + alphas[:, None, None] * model.cache_logits(features, beta)  # (alphas, images, classes)
            accuracies = (logits.argmax(-1) == targets).float().mean(-1)
            losses = F.cross_entropy(logits.transpose(1, 2), targets.expand(len(alphas), -1), reduction="none").mean(-1)
            for alpha, accuracy, loss in zip(alphas.tolist(), accuracies.tolist(), losses.tolist()):
                if best is None or (accuracy, -loss) > best[0]:
                    best = ((accuracy, -loss), alpha, beta)
    (accuracy, _), model.config.alpha, model.config.beta = best
    return {"alpha": model.config.alpha, "beta": model.config.beta, "val_accuracy": accuracy}


@on_training_device
def fit(model: TipAdapterModel, view: TrainingView, settings: FitSettings | None = None) -> dict:
    """Fit Tip-Adapter (training-free) or, with ``config.fine_tune_keys``, Tip-Adapter-F.

    Tip-Adapter: keys = normalised mean of the augmented views of each support image, values = their
    labels; (alpha, beta) chosen on ``view.val``. Tip-Adapter-F then trains the keys with those
    (alpha, beta), searches (alpha, beta) again with the trained keys, and keeps the trained keys only
    if they score at least as well on ``view.val`` as the training-free ones (test data is never used).

    ``settings`` default to :data:`DEFAULTS` seeded with the protocol's seed (:func:`~hf_zsl.training.run_settings`).

    Returns:
        ``{"alpha", "beta", "val_accuracy", "train_seconds"}`` (all of fitting, feature extraction
        included), plus for -F ``"val_accuracy_training_free"`` and ``"keys_fine_tuned"``.
    """
    settings = settings or run_settings(DEFAULTS, view)
    start = time.perf_counter()
    if view.val is None:
        raise ValueError(
            "Tip-Adapter chooses alpha and beta on validation data: use a protocol with a validation split."
        )
    if list(view.train_class_names) != list(model.config.class_names):
        raise ValueError("Build the model with class_names=view.train_class_names (same classes, same order).")
    labels = torch.tensor(view.train[view.label_column])
    views = support_views(model, view)
    model.set_cache(views.mean(dim=0), labels)
    val = LabelledFeatures.of(model, view.val, view.train_class_names, view.label_column)
    info = choose_alpha_beta(model, val)
    if model.config.fine_tune_keys:
        info = fine_tune_keys(model, views, labels, val, info, settings)
    return {**info, "train_seconds": time.perf_counter() - start}


def fine_tune_keys(
    model: TipAdapterModel,
    views: torch.Tensor,
    labels: torch.Tensor,
    val: LabelledFeatures,
    training_free: dict,
    settings: FitSettings,
) -> dict:
    """Tip-Adapter-F: train the keys on the augmented views `(views, images, dim)` with cross-entropy
    on the fused logits, re-search (alpha, beta), and keep whichever keys validate better."""
    before = (snapshot(model), model.config.alpha, model.config.beta)
    train = LabelledFeatures(views.flatten(0, 1), labels.repeat(len(views)), list(model.config.class_names))
    train_on_features(model, train, settings)
    tuned = choose_alpha_beta(model, val)
    keep = tuned["val_accuracy"] >= training_free["val_accuracy"]
    if not keep:
        model.load_state_dict(before[0], strict=False)
        model.config.alpha, model.config.beta = before[1], before[2]
    chosen = tuned if keep else training_free
    return {**chosen, "val_accuracy_training_free": training_free["val_accuracy"], "keys_fine_tuned": keep}
