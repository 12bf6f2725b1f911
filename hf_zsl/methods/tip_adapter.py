"""Fitting Tip-Adapter and Tip-Adapter-F: build the cache from augmented support features, choose
(alpha, beta) on validation, and for -F fine-tune the keys with ``Trainer`` on cached features.

Presets (:mod:`hf_zsl.presets`; ``docs/official_recipes.md`` §2):

- ``paper``: the official recipe. Keys: the mean of 10 augmented views (crop scale 0.5–1 + flip).
  (alpha, beta) searched on the validation split over Tip's ``search_hp`` grid (:func:`official_grid`,
  200 beta × 20 alpha values from ``search_scale`` [7, 3], the ImageNet / OxfordPets / UCF101 config,
  used for every dataset), beta-major, the first strictly better accuracy kept. -F: AdamW (lr 1e-3,
  eps 1e-4, weight decay 0.01), batch 256, cosine per iteration, 20 epochs, each over a fresh augmented
  view of every support image, trained at the configured ``(init_beta, init_alpha)`` = (1, 1.17), no
  gradient clipping, the last epoch kept, then (alpha, beta) searched again; fp16 on a GPU.
- ``embedded``: the settings tuned for the embedded tiny bases: a wider grid scaled by the logit scale
  (:data:`BETA_GRID`, :data:`ALPHA_RATIOS`), ties broken by validation loss; -F trains 2 epochs over the
  10 cached key views at the searched (alpha, beta) and keeps the trained keys only if they validate at
  least as well as the training-free cache.
"""

from __future__ import annotations

import dataclasses
import time

import torch
import torch.nn.functional as F

from ..augmentation import CROP_SCALE
from ..features import image_features
from ..modeling.modeling_tip_adapter import TipAdapterModel
from ..presets import EMBEDDED, PAPER, TIP_F_BUDGET, Presets
from ..protocols import TrainingView
from ..training import (
    FitSettings, LabelledFeatures, extend_settings, on_training_device, run_settings, snapshot, train_on_features,
    used_precision,
)

SEARCHES = ("hfzsl", "official")


@dataclasses.dataclass
class TipSettings(FitSettings):
    """:class:`~hf_zsl.training.FitSettings` (for -F's training) plus the (alpha, beta) search.

    Attributes:
        search: ``"hfzsl"`` (:data:`BETA_GRID` × :data:`ALPHA_RATIOS`, ties to the lower validation loss;
            -F trains at the searched point) or ``"official"`` (Tip's grid, :func:`official_grid`, first
            strictly better accuracy; -F trains at ``(init_beta, init_alpha)``).
        beta_scale, alpha_scale: Tip's ``search_scale``; beta_steps, alpha_steps: its ``search_step``.
        init_beta, init_alpha: Tip's ``init_beta`` / ``init_alpha``, where -F trains under ``"official"``.
        keep_better_keys: keep -F's trained keys only if they validate at least as well as the
            training-free cache (an hf_zsl addition; the official code always keeps them).
    """

    search: str = "hfzsl"
    beta_scale: float = 7.0
    alpha_scale: float = 3.0
    beta_steps: int = 200
    alpha_steps: int = 20
    init_beta: float = 1.0
    init_alpha: float = 1.17
    keep_better_keys: bool = True

    def __post_init__(self):
        super().__post_init__()
        if self.search not in SEARCHES:
            raise ValueError(f"TipSettings.search must be one of {list(SEARCHES)}, got {self.search!r}.")
        if min(self.beta_steps, self.alpha_steps) < 1 or min(self.beta_scale, self.alpha_scale) <= 0.1:
            raise ValueError("TipSettings needs beta_steps, alpha_steps >= 1 and beta_scale, alpha_scale > 0.1.")


# Tip-Adapter-F's budget: AdamW (torch's default weight decay 0.01, as in the official code), lr 1e-3,
# cosine, batch 256. One epoch here is one pass over all cached augmented views (augment_views ×
# support images), so 2 epochs over the default 10 views are the paper's 20 passes over the support set.
DEFAULTS = TipSettings(epochs=2, batch_size=256, learning_rate=1e-3, weight_decay=0.01)
PAPER_SETTINGS = TipSettings(**dataclasses.asdict(TIP_F_BUDGET), search="official", keep_better_keys=False)
PRESETS = Presets({EMBEDDED: DEFAULTS, PAPER: PAPER_SETTINGS})
# The embedded grid. The paper's ranges (beta ~0.1-12, alpha ~0.1-10) assume CLIP's logit scale of 100,
# so alpha is searched as these ratios times logit_scale / 100. Alpha reaches far beyond the paper's
# range: where zero-shot is worse than chance (a shifted colour space), the cache must outweigh it, and
# validation decides whether it should.
BETA_GRID = (0.25, 0.5, 1.0, 2.0, 3.5, 5.5, 8.0, 12.0)
ALPHA_RATIOS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)


def official_grid(scale: float, steps: int) -> list[float]:
    """Tip's ``search_hp`` values: ``[i * (scale - 0.1) / steps + 0.1 for i in range(steps)]`` (from 0.1,
    stopping one step short of ``scale``), in their floating-point order of operations."""
    return [i * (scale - 0.1) / steps + 0.1 for i in range(steps)]


def support_views(
    model: TipAdapterModel, view: TrainingView, training_views: int = 0, crop_scale: float = CROP_SCALE[0]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Features of the support images' augmented views (crop scale ``crop_scale``), computed once, then
    read from the feature cache.

    Returns:
        The keys' views `(config.augment_views, images, dim)` (the plain images, `(1, images, dim)`, when
        ``augment_views`` is 0) and -F's ``training_views`` further views `(training_views, images, dim)`
        (``None`` when 0).
    """
    keys, total = model.config.augment_views, model.config.augment_views + training_views
    features = image_features(
        model, view.train, augment_views=total, augment_seed=model.config.augment_seed, crop_scale=crop_scale
    )
    if not total:
        return features[None], None
    key_views = features[:keys] if keys else image_features(model, view.train)[None]
    return key_views, features[keys:] if training_views else None


def _zero_shot_and_targets(model: TipAdapterModel, val: LabelledFeatures):
    labels = [tuple(ids) for ids in model.config.class_token_ids]
    features, targets = val.features.to(model.device), val.labels.to(model.device)
    zero_shot = model.compute_logits(features, model.label_features(labels), labels, alpha=0.0)
    return features, targets, zero_shot


def choose_alpha_beta(model: TipAdapterModel, val: LabelledFeatures, settings: TipSettings = DEFAULTS) -> dict:
    """Set ``config.alpha`` / ``config.beta`` to the grid point best on ``val`` (``settings.search``).

    The validation labels are the trained classes in order, so the served logits are the zero-shot
    logits plus ``alpha`` times :meth:`TipAdapterModel.cache_logits`: those two are computed once
    (per ``beta``) and combined for every ``alpha``.

    Returns:
        ``{"alpha", "beta", "val_accuracy"}`` of the chosen point.
    """
    search = _official_search if settings.search == "official" else _hfzsl_search
    with torch.no_grad():
        accuracy, model.config.alpha, model.config.beta = search(model, *_zero_shot_and_targets(model, val), settings)
    return {"alpha": model.config.alpha, "beta": model.config.beta, "val_accuracy": accuracy}


def _hfzsl_search(model, features, targets, zero_shot, settings) -> tuple[float, float, float]:
    """:data:`BETA_GRID` × :data:`ALPHA_RATIOS` (times ``logit_scale / 100``); ties: lower validation
    cross-entropy, then the earlier point. Returns ``(accuracy, alpha, beta)``."""
    alphas = torch.tensor(ALPHA_RATIOS, device=model.device) * float(model.logit_scale) / 100
    best = None
    for beta in BETA_GRID:
        logits = zero_shot + alphas[:, None, None] * model.cache_logits(features, beta)  # (alphas, images, classes)
        accuracies = (logits.argmax(-1) == targets).float().mean(-1)
        losses = F.cross_entropy(logits.transpose(1, 2), targets.expand(len(alphas), -1), reduction="none").mean(-1)
        for alpha, accuracy, loss in zip(alphas.tolist(), accuracies.tolist(), losses.tolist()):
            if best is None or (accuracy, -loss) > best[0]:
                best = ((accuracy, -loss), alpha, beta)
    return best[0][0], best[1], best[2]


def _official_search(model, features, targets, zero_shot, settings) -> tuple[float, float, float]:
    """Tip's ``search_hp``: beta outer, alpha inner over :func:`official_grid`; a point replaces the best
    only with strictly more correct images, from ``(0, 0)`` at 0 correct. Returns ``(accuracy, alpha, beta)``."""
    alphas = official_grid(settings.alpha_scale, settings.alpha_steps)
    best_correct, best_alpha, best_beta = 0, 0.0, 0.0
    for beta in official_grid(settings.beta_scale, settings.beta_steps):
        cache = model.cache_logits(features, beta)
        for alpha in alphas:
            correct = int(((zero_shot + cache * alpha).argmax(-1) == targets).sum())
            if correct > best_correct:
                best_correct, best_alpha, best_beta = correct, alpha, beta
    return best_correct / max(len(targets), 1), best_alpha, best_beta


@on_training_device
def fit(model: TipAdapterModel, view: TrainingView, settings: TipSettings | None = None) -> dict:
    """Fit Tip-Adapter (training-free) or, with ``config.fine_tune_keys``, Tip-Adapter-F.

    Tip-Adapter: keys = normalised mean of the augmented views of each support image, values = their
    labels; (alpha, beta) chosen on ``view.val``. Tip-Adapter-F then trains the keys (at the searched
    point, or at ``(init_beta, init_alpha)`` under ``search="official"``), searches (alpha, beta) again
    with the trained keys, and with ``keep_better_keys`` keeps them only if they score at least as well on
    ``view.val`` as the training-free ones (test data is never used).

    ``settings`` default to :data:`DEFAULTS` (the ``embedded`` preset) seeded with the protocol's seed
    (:func:`~hf_zsl.training.run_settings`).

    Returns:
        ``{"alpha", "beta", "val_accuracy", "train_seconds"}`` (all of fitting, feature extraction
        included), plus for -F ``"val_accuracy_training_free"``, ``"keys_fine_tuned"`` and ``"precision"``.
    """
    settings = extend_settings(settings or run_settings(DEFAULTS, view), TipSettings)
    start = time.perf_counter()
    if view.val is None:
        raise ValueError(
            "Tip-Adapter chooses alpha and beta on validation data: use a protocol with a validation split."
        )
    if list(view.train_class_names) != list(model.config.class_names):
        raise ValueError("Build the model with class_names=view.train_class_names (same classes, same order).")
    labels = torch.tensor(view.train[view.label_column])
    training_views = settings.train_views if model.config.fine_tune_keys else 0
    key_views, train_views = support_views(model, view, training_views, settings.crop_scale)
    model.set_cache(key_views.mean(dim=0), labels)
    val = LabelledFeatures.of(model, view.val, view.train_class_names, view.label_column)
    info = choose_alpha_beta(model, val, settings)
    if model.config.fine_tune_keys:
        info = fine_tune_keys(model, key_views, train_views, labels, val, info, settings)
    return {**info, "train_seconds": time.perf_counter() - start}


def fine_tune_keys(
    model: TipAdapterModel,
    key_views: torch.Tensor,
    training_views: torch.Tensor | None,
    labels: torch.Tensor,
    val: LabelledFeatures,
    training_free: dict,
    settings: TipSettings,
) -> dict:
    """Tip-Adapter-F: train the keys with cross-entropy on the fused logits, re-search (alpha, beta), and
    (``keep_better_keys``) keep whichever keys validate better.

    Args:
        key_views: `(views, images, dim)` the keys' augmented views; without ``training_views`` every
            epoch trains on all of them.
        training_views: `(epochs' views, images, dim)`: epoch ``e`` trains on view ``e mod`` their count.
    """
    before = (snapshot(model), model.config.alpha, model.config.beta)
    if settings.search == "official":
        model.config.alpha, model.config.beta = settings.init_alpha, settings.init_beta
    names = list(model.config.class_names)
    if training_views is None:
        train_on_features(model, LabelledFeatures(key_views.flatten(0, 1), labels.repeat(len(key_views)), names), settings)
    else:
        train_on_features(model, LabelledFeatures(training_views[0], labels, names), settings, views=training_views)
    tuned = choose_alpha_beta(model, val, settings)
    keep = tuned["val_accuracy"] >= training_free["val_accuracy"] or not settings.keep_better_keys
    if not keep:
        model.load_state_dict(before[0], strict=False)
        model.config.alpha, model.config.beta = before[1], before[2]
    chosen = tuned if keep else training_free
    return {
        **chosen, "val_accuracy_training_free": training_free["val_accuracy"], "keys_fine_tuned": keep,
        "precision": used_precision(settings),
    }
