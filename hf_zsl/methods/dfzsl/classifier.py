"""DFZSL's final classifier: a cosine classifier over all classes trained with logit adjustment.

Pure tensor code. The weights ``(C, d)`` start from given rows (DFZSL: the prompt-tuned text features
of every class) and are trained on seen-class features ∪ synthetic unseen-class features with

    CE( cos(x, w_y) / T + log p(y) + log p0(group(y)) ),

where p(y) is the empirical frequency of ``y`` among the seen-class training samples for a seen class,
``1/|U|`` for an unseen one, and p0 is the seen / unseen group prior (0.5 / 0.5). The adjustment is
only used by the loss: prediction is the plain argmax of the cosine logits (:func:`predict`).

Model selection differs from the reference (``ylong4/DFZSL`` ``tfvaegan/classifiers/classifier_images.py``),
which reports the best epoch *on the test set*, by the protocol's own score (GZSL H for the GZSL table,
the base-to-new HM for the base-to-new table). Here the epoch is chosen by the same score on a held-out
set of virtual / synthetic features passed as ``selection`` (:data:`SELECTION_METRICS`), and without one
the last epoch is kept. Batches are the shuffled chunks of each epoch (the last one may be smaller),
where the reference wraps around to fill it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ...metrics.functional import base_to_new, gzsl

# How a held-out epoch is scored: "gzsl" predicts over all classes (per-class S / U / H); "base2new"
# predicts each group among its own classes (plain base / new accuracies and their HM).
SELECTION_METRICS = ("gzsl", "base2new")


@dataclasses.dataclass
class ClassifierSettings:
    """Hyper-parameters of :func:`train_logit_adjusted_classifier` (the reference's defaults).

    Attributes:
        temperature: T of the cosine logits ``cos(x, w) / T``.
        learning_rate, beta1: Adam's learning rate and β1 (β2 = 0.999).
        batch_size: training samples per step.
        epochs: passes over the training features.
        seen_prior: p0(seen) of the group prior; p0(unseen) = 1 − seen_prior.
        seed: seeds the shuffling.
    """

    temperature: float = 0.01
    learning_rate: float = 5e-5
    beta1: float = 0.5
    batch_size: int = 1800
    epochs: int = 100
    seen_prior: float = 0.5
    seed: int = 0

    def __post_init__(self):
        for name in ("temperature", "learning_rate", "batch_size", "epochs"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ClassifierSettings.{name} must be positive, got {getattr(self, name)}.")
        if not 0.0 < self.seen_prior < 1.0:
            raise ValueError(f"ClassifierSettings.seen_prior must lie strictly between 0 and 1, got {self.seen_prior}.")


def _class_ids(ids: Sequence[int] | torch.Tensor, name: str, num_classes: int) -> torch.Tensor:
    """``ids`` as a 1-D long tensor of distinct classes in ``[0, num_classes)``; ``ValueError`` otherwise."""
    ids = torch.as_tensor(ids)
    if ids.ndim != 1 or ids.numel() == 0:
        raise ValueError(f"`{name}` must be a non-empty 1-D list of class ids, got shape {tuple(ids.shape)}.")
    if ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise ValueError(f"`{name}` must hold integer class ids, got dtype {ids.dtype}.")
    if ids.min() < 0 or ids.max() >= num_classes:
        raise ValueError(f"`{name}` must lie in [0, {num_classes}), got {ids.tolist()}.")
    if ids.unique().numel() != ids.numel():
        raise ValueError(f"`{name}` lists a class more than once: {ids.tolist()}.")
    return ids.long()


def _split_classes(seen_ids, unseen_ids, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated seen and unseen ids: disjoint, and together every class in ``[0, num_classes)``."""
    seen = _class_ids(seen_ids, "seen_ids", num_classes)
    unseen = _class_ids(unseen_ids, "unseen_ids", num_classes)
    shared = set(seen.tolist()) & set(unseen.tolist())
    if shared:
        raise ValueError(f"`seen_ids` and `unseen_ids` overlap: {sorted(shared)}.")
    if seen.numel() + unseen.numel() != num_classes:
        missing = sorted(set(range(num_classes)) - set(seen.tolist()) - set(unseen.tolist()))
        raise ValueError(f"every class must be seen or unseen; classes {missing} are neither.")
    return seen, unseen


def _labels(labels: torch.Tensor, name: str, num_classes: int, count: int | None = None) -> torch.Tensor:
    """``labels`` checked to be 1-D (of length ``count`` when given) integer ids in ``[0, num_classes)``."""
    if labels.ndim != 1 or (count is not None and labels.shape[0] != count):
        expected = f"({count},), one per feature row" if count is not None else "1-D"
        raise ValueError(f"`{name}` must be {expected}, got shape {tuple(labels.shape)}.")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"`{name}` must hold integer class ids, got dtype {labels.dtype}.")
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"`{name}` must lie in [0, {num_classes}), got range [{int(labels.min())}, {int(labels.max())}]."
        )
    return labels.long()


def _features(features: torch.Tensor, name: str, dim: int) -> torch.Tensor:
    if features.ndim != 2 or features.shape[0] == 0 or features.shape[1] != dim:
        raise ValueError(f"`{name}` must be a non-empty (N, {dim}) tensor, got shape {tuple(features.shape)}.")
    return features.detach().float()


def logit_adjustment(
    labels: torch.Tensor,
    seen_ids: Sequence[int] | torch.Tensor,
    unseen_ids: Sequence[int] | torch.Tensor,
    num_classes: int,
    seen_prior: float = 0.5,
) -> torch.Tensor:
    """``log p(y) + log p0(group(y))`` for every class: what the training loss adds to the logits.

    Args:
        labels: `(N,)` training labels; only those of seen classes count for p(y) over seen classes.
        seen_ids, unseen_ids: disjoint class ids that together cover ``range(num_classes)``.
        num_classes: C.
        seen_prior: p0(seen); p0(unseen) = 1 − seen_prior.

    Returns:
        `(C,)`: ``log(n_y / n_seen) + log(seen_prior)`` for a seen class ``y`` with ``n_y`` of the
        ``n_seen`` seen-class labels, ``log(1 / |U|) + log(1 − seen_prior)`` for an unseen class.
    """
    if not 0.0 < seen_prior < 1.0:
        raise ValueError(f"`seen_prior` must lie strictly between 0 and 1, got {seen_prior}.")
    seen, unseen = _split_classes(seen_ids, unseen_ids, num_classes)
    labels = _labels(labels, "labels", num_classes)
    counts = torch.bincount(labels, minlength=num_classes).double()[seen]
    if (counts == 0).any():
        empty = seen[counts == 0].tolist()
        raise ValueError(f"seen classes {empty} have no training sample: their prior log p(y) would be -inf.")
    adjustment = torch.empty(num_classes, dtype=torch.float64)
    adjustment[seen] = torch.log(counts / counts.sum()) + math.log(seen_prior)
    adjustment[unseen] = -math.log(unseen.numel()) + math.log(1.0 - seen_prior)
    return adjustment.float()


def cosine_logits(features: torch.Tensor, weights: torch.Tensor, temperature: float) -> torch.Tensor:
    """``cos(x, w_c) / T``: `(N, d), (C, d) -> (N, C)`."""
    return F.normalize(features, dim=1) @ F.normalize(weights, dim=1).T / temperature


def predict(features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Test-time prediction, the argmax of the raw cosine logits (no adjustment): `(N, d), (C, d) -> (N,)`."""
    return cosine_logits(features, weights, 1.0).argmax(dim=1)


def _check_selection_metric(metric: str) -> None:
    if metric not in SELECTION_METRICS:
        raise ValueError(f"Unknown selection metric {metric!r}; use one of {SELECTION_METRICS}.")


def held_out_scores(
    weights: torch.Tensor,
    features: torch.Tensor,
    labels: torch.Tensor,
    seen: torch.Tensor,
    unseen: torch.Tensor,
    metric: str = "gzsl",
) -> dict[str, float]:
    """Held-out scores of ``weights (C, d)`` on ``features (M, d)``, ``labels (M,)``.

    ``metric="gzsl"``: ``{"seen", "unseen", "harmonic"}``, per-class mean accuracies, predicting over all
    classes. ``metric="base2new"``: ``{"base", "new", "harmonic"}``, plain accuracies, each sample
    predicted among the classes of its own group (seen = base, unseen = new).
    """
    _check_selection_metric(metric)
    if metric == "gzsl":
        return gzsl(predict(features, weights).tolist(), labels.tolist(), seen.tolist(), unseen.tolist())
    predictions = torch.empty_like(labels)
    for group in (seen, unseen):
        rows = torch.isin(labels, group)
        predictions[rows] = group[predict(features[rows], weights[group])]
    return base_to_new(predictions.tolist(), labels.tolist(), seen.tolist(), unseen.tolist())


def _check_selection(selection, dim: int, num_classes: int, seen: torch.Tensor, unseen: torch.Tensor):
    """Validated ``(features (M, d), labels (M,))`` with samples of both seen and unseen classes."""
    if len(selection) != 2:
        raise ValueError("`selection` must be a pair (held_out_features (M, d), held_out_labels (M,)).")
    features = _features(selection[0], "selection features", dim)
    labels = _labels(selection[1], "selection labels", num_classes, features.shape[0])
    for group, name in ((seen, "seen"), (unseen, "unseen")):
        if not torch.isin(labels, group).any():
            raise ValueError(f"`selection` has no {name}-class sample: the harmonic mean cannot be scored.")
    return features, labels


def train_logit_adjusted_classifier(
    initial_weights: torch.Tensor,
    features: torch.Tensor,
    labels: torch.Tensor,
    seen_ids: Sequence[int] | torch.Tensor,
    unseen_ids: Sequence[int] | torch.Tensor,
    settings: ClassifierSettings | None = None,
    selection: tuple[torch.Tensor, torch.Tensor] | None = None,
    selection_metric: str = "gzsl",
) -> tuple[torch.Tensor, dict]:
    """Train the cosine classifier with the logit-adjusted loss; keep the best held-out epoch or the last.

    Args:
        initial_weights: `(C, d)` starting class weights (DFZSL: text features of all classes).
        features: `(N, d)` training features (seen-class features and synthetic unseen-class ones).
        labels: `(N,)` their classes in ``[0, C)``.
        seen_ids, unseen_ids: disjoint non-empty class ids covering ``range(C)``.
        settings: :class:`ClassifierSettings` defaults when ``None``.
        selection: optional held-out ``(features (M, d), labels (M,))`` of *virtual / synthetic* data with
            samples of both groups; the epoch with the best harmonic mean on it is kept. Never pass real
            test data here.
        selection_metric: how ``selection`` is scored (:func:`held_out_scores`): ``"gzsl"`` or
            ``"base2new"``, the protocol the classifier will be evaluated under.

    Returns:
        ``(weights (C, d) unit rows, info)``; predict with :func:`predict`. ``info`` holds ``epoch``
        (1-based, the one kept), ``selected_on`` (``"held_out"`` or ``"last_epoch"``), ``selection_metric``,
        ``held_out`` (its held-out scores, ``None`` without ``selection``), ``history`` (per epoch: mean
        loss and, with ``selection``, the held-out scores) and ``train_seconds``.
    """
    settings = settings or ClassifierSettings()
    if initial_weights.ndim != 2 or initial_weights.shape[0] == 0:
        raise ValueError(f"`initial_weights` must be a non-empty (C, d) tensor, got {tuple(initial_weights.shape)}.")
    num_classes, dim = initial_weights.shape
    features = _features(features, "features", dim)
    labels = _labels(labels, "labels", num_classes, features.shape[0])
    seen, unseen = _split_classes(seen_ids, unseen_ids, num_classes)
    _check_selection_metric(selection_metric)
    held_out = _check_selection(selection, dim, num_classes, seen, unseen) if selection is not None else None
    adjustment = logit_adjustment(labels, seen, unseen, num_classes, settings.seen_prior)

    start = time.perf_counter()
    weights = torch.nn.Parameter(initial_weights.detach().float().clone())
    optimiser = torch.optim.Adam([weights], lr=settings.learning_rate, betas=(settings.beta1, 0.999))
    rng = torch.Generator().manual_seed(settings.seed)
    history, best = [], None
    for epoch in range(1, settings.epochs + 1):
        losses = []
        for batch in torch.randperm(features.shape[0], generator=rng).split(settings.batch_size):
            logits = cosine_logits(features[batch], weights, settings.temperature) + adjustment
            loss = F.cross_entropy(logits, labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        record = {"epoch": epoch, "loss": sum(losses) / len(losses)}
        if held_out is not None:
            record.update(held_out_scores(weights.detach(), *held_out, seen, unseen, selection_metric))
            if best is None or record["harmonic"] > best[0]["harmonic"]:
                best = (record, weights.detach().clone())
        history.append(record)
    chosen, kept = best if best is not None else (history[-1], weights.detach())
    info = {
        "epoch": chosen["epoch"],
        "selected_on": "held_out" if held_out is not None else "last_epoch",
        "selection_metric": selection_metric,
        "held_out": {key: value for key, value in chosen.items() if key not in ("epoch", "loss")} if held_out is not None else None,
        "history": history,
        "train_seconds": time.perf_counter() - start,
    }
    return F.normalize(kept, dim=1), info
