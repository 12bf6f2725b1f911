"""Classification metrics as plain functions over integer class ids; every result is a fraction in [0, 1].

This is the one place the arithmetic lives: the ``evaluate`` modules next to this file
(``hf_zsl/metrics/<name>/<name>.py``) call these functions, and so does the toolkit directly.

Conventions of the zero-shot literature:

* GZSL (Xian et al., "Zero-Shot Learning — the Good, the Bad and the Ugly"): test images of seen and of
  unseen classes are classified over the union of both label sets; ``seen`` and ``unseen`` are the mean
  per-class accuracies over the test images of each group, ``harmonic`` is H = 2·S·U / (S + U).
* Base-to-new (Zhou et al., CoCoOp): base-class test images are classified among base classes only, new-class
  test images among new classes only; ``base`` and ``new`` are plain accuracies, ``harmonic`` their H.
* ZSL (``zsl_unseen``): unseen-class test images classified among unseen classes only; mean per-class accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _as_ids(values: Sequence[int], name: str) -> np.ndarray:
    """``values`` as a 1-D int64 array; a ``ValueError`` for anything that is not a sequence of integers."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"`{name}` must be a 1-D sequence of class ids, got shape {array.shape}.")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"`{name}` must hold integer class ids, got dtype {array.dtype}.")
    return array.astype(np.int64)


def _pair(predictions: Sequence[int], references: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(predictions, references)``: non-empty and of equal length."""
    preds, refs = _as_ids(predictions, "predictions"), _as_ids(references, "references")
    if preds.shape != refs.shape:
        raise ValueError(f"`predictions` and `references` differ in length: {len(preds)} != {len(refs)}.")
    if refs.size == 0:
        raise ValueError("`predictions` and `references` are empty: there is nothing to score.")
    return preds, refs


def _class_set(classes: Sequence[int], name: str) -> np.ndarray:
    """Validated, sorted, duplicate-free non-empty class id list."""
    if classes is None:
        raise ValueError(f"`{name}` is required: pass the list of class ids.")
    ids = _as_ids(classes, name)
    if ids.size == 0:
        raise ValueError(f"`{name}` is empty.")
    if len(np.unique(ids)) != ids.size:
        raise ValueError(f"`{name}` lists a class id more than once: {sorted(ids.tolist())}.")
    return np.sort(ids)


def _check_within(ids: np.ndarray, allowed: np.ndarray, what: str, where: str) -> None:
    """Raise if any of ``ids`` is not in ``allowed``."""
    outside = np.setdiff1d(ids, allowed)
    if outside.size:
        raise ValueError(f"{what} {outside[:10].tolist()} not in {where} {allowed.tolist()}.")


def harmonic_mean(a: float, b: float) -> float:
    """H = 2ab / (a + b); 0 when both are 0."""
    return 0.0 if a + b == 0 else float(2 * a * b / (a + b))


def accuracy(predictions: Sequence[int], references: Sequence[int]) -> float:
    """Fraction of predictions equal to their reference."""
    preds, refs = _pair(predictions, references)
    return float(np.mean(preds == refs))


def top_k_accuracy(scores, references: Sequence[int], k: int) -> float:
    """Fraction of samples whose reference is among the ``k`` highest of its row of ``scores``
    `(num_samples, num_classes)` (all classes count when there are fewer than ``k``)."""
    scores = np.asarray(scores)
    refs = _as_ids(references, "references")
    if scores.ndim != 2 or scores.shape[0] != refs.size or refs.size == 0:
        raise ValueError(f"`scores` must be (num_samples, num_classes) with one row per reference, got {scores.shape} for {refs.size}.")
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean((top == refs[:, None]).any(axis=1)))


def per_class_accuracy(
    predictions: Sequence[int], references: Sequence[int], classes: Sequence[int] | None = None
) -> dict[int, float]:
    """Accuracy over the samples of each reference class, ``{class_id: accuracy}``.

    With ``classes``, every reference and prediction must be one of them; classes without any
    reference sample are left out (their accuracy is undefined).
    """
    preds, refs = _pair(predictions, references)
    if classes is not None:
        allowed = _class_set(classes, "classes")
        _check_within(refs, allowed, "reference class ids", "`classes`")
        _check_within(preds, allowed, "predicted class ids", "`classes`")
    return {int(c): float(np.mean(preds[refs == c] == c)) for c in np.unique(refs)}


def mean_per_class_accuracy(
    predictions: Sequence[int], references: Sequence[int], classes: Sequence[int] | None = None
) -> float:
    """Mean over reference classes of the per-class accuracy (balanced accuracy)."""
    return float(np.mean(list(per_class_accuracy(predictions, references, classes).values())))


def zsl_unseen(predictions: Sequence[int], references: Sequence[int], unseen_classes: Sequence[int]) -> float:
    """Conventional ZSL score: mean per-class accuracy of unseen-class images classified among unseen classes."""
    return mean_per_class_accuracy(predictions, references, classes=unseen_classes)


def _two_groups(
    predictions: Sequence[int],
    references: Sequence[int],
    first: Sequence[int],
    second: Sequence[int],
    names: tuple[str, str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate a two-group protocol; returns predictions, references and the two sorted class sets."""
    preds, refs = _pair(predictions, references)
    a, b = _class_set(first, names[0]), _class_set(second, names[1])
    shared = np.intersect1d(a, b)
    if shared.size:
        raise ValueError(f"`{names[0]}` and `{names[1]}` overlap: {shared.tolist()}.")
    both = np.concatenate([a, b])
    where = f"`{names[0]}` ∪ `{names[1]}`"
    _check_within(refs, both, "reference class ids", where)
    _check_within(preds, both, "predicted class ids", where)
    for group, name in ((a, names[0]), (b, names[1])):
        if not np.isin(refs, group).any():
            raise ValueError(f"no reference sample belongs to `{name}`: that group cannot be scored.")
    return preds, refs, a, b


def gzsl(
    predictions: Sequence[int], references: Sequence[int], seen_classes: Sequence[int], unseen_classes: Sequence[int]
) -> dict[str, float]:
    """GZSL ``{"seen", "unseen", "harmonic"}``: per-class-mean accuracies over the test images of each group.

    Predictions range over seen ∪ unseen: a seen image predicted as an unseen class counts as wrong.
    """
    preds, refs, seen, unseen = _two_groups(
        predictions, references, seen_classes, unseen_classes, ("seen_classes", "unseen_classes")
    )
    in_seen = np.isin(refs, seen)
    s = mean_per_class_accuracy(preds[in_seen], refs[in_seen])
    u = mean_per_class_accuracy(preds[~in_seen], refs[~in_seen])
    return {"seen": s, "unseen": u, "harmonic": harmonic_mean(s, u)}


def base_to_new(
    predictions: Sequence[int], references: Sequence[int], base_classes: Sequence[int], new_classes: Sequence[int]
) -> dict[str, float]:
    """Base-to-new ``{"base", "new", "harmonic"}``: plain accuracies of the base and the new test images.

    Each group is classified among its own classes only, so a base image predicted as a new class (or the
    reverse) is a protocol error, not a wrong answer, and raises.
    """
    preds, refs, base, new = _two_groups(
        predictions, references, base_classes, new_classes, ("base_classes", "new_classes")
    )
    in_base = np.isin(refs, base)
    _check_within(preds[in_base], base, "predictions for base-class samples", "`base_classes`")
    _check_within(preds[~in_base], new, "predictions for new-class samples", "`new_classes`")
    b = accuracy(preds[in_base], refs[in_base])
    n = accuracy(preds[~in_base], refs[~in_base])
    return {"base": b, "new": n, "harmonic": harmonic_mean(b, n)}
