"""Calibrated stacking (Chao et al., ECCV 2016): choose the constant subtracted from seen-class scores
so that predicting over seen and unseen classes together maximises the GZSL harmonic mean H."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from . import metrics


@dataclasses.dataclass
class CalibrationChoice:
    """The chosen constant and the per-class-mean accuracies it gave (fractions in [0, 1]).

    Attributes:
        calibration: the constant subtracted from the seen classes' scores.
        seen, unseen, harmonic: S, U and H at that constant.
        grid: every constant tried, with its ``(seen, unseen, harmonic)``.
    """

    calibration: float
    seen: float
    unseen: float
    harmonic: float
    grid: list[tuple[float, float, float, float]]

    def to_dict(self) -> dict:
        """The choice without the grid (for results and configs)."""
        return {"calibration": self.calibration, "seen": self.seen, "unseen": self.unseen, "harmonic": self.harmonic}


def default_grid(logits: torch.Tensor, seen_columns: Sequence[int], points: int = 201) -> np.ndarray:
    """0 plus ``points`` constants spanning every image's margin (best seen score − best other score),
    so the grid covers everything from no change to every image predicted as an unseen class."""
    seen = _seen_mask(logits.shape[1], seen_columns)
    margin = logits[:, seen].max(dim=1).values - logits[:, ~seen].max(dim=1).values
    low, high = min(0.0, float(margin.min())), max(0.0, float(margin.max()))
    return np.unique(np.concatenate([[0.0], np.linspace(low, high + 1e-6, points)]))


def _seen_mask(num_classes: int, seen_columns: Sequence[int]) -> torch.Tensor:
    """`(num_classes,)` bool mask, true at the seen columns."""
    mask = torch.zeros(num_classes, dtype=torch.bool)
    mask[list(seen_columns)] = True
    return mask


def choose_calibration(
    logits: torch.Tensor,
    references: Sequence[int],
    seen_columns: Sequence[int],
    grid: Sequence[float] | None = None,
) -> CalibrationChoice:
    """The constant of ``grid`` that maximises H on a validation set (ties: the smallest in magnitude).

    Args:
        logits: `(num_images, num_classes)` uncalibrated scores over every class.
        references: `(num_images,)` true class ids (columns of ``logits``).
        seen_columns: the classes treated as seen (their scores are lowered); images of these are the
            "seen" group, all other images the "unseen" group (both must be present).
        grid: the constants to try (default :func:`default_grid`).

    Raises:
        ValueError: for logits that are not 2-D, empty or not finite, references of another length, or
            seen columns outside the logits or covering all of them.
    """
    logits = torch.as_tensor(logits, dtype=torch.float32)
    if logits.ndim != 2 or not logits.numel():
        raise ValueError(f"Calibration needs `(num_images, num_classes)` logits of some images; got shape {tuple(logits.shape)}.")
    if not torch.isfinite(logits).all():
        raise ValueError("The validation logits hold NaN or infinite scores; calibrating on them would pick an arbitrary constant.")
    references = np.asarray(references, dtype=np.int64)
    if references.shape != (logits.shape[0],):
        raise ValueError(f"{references.size} references for {logits.shape[0]} images; give one class id per image.")
    seen = sorted(int(c) for c in seen_columns)
    outside = [c for c in seen if not 0 <= c < logits.shape[1]]
    if outside:
        raise ValueError(f"Seen columns {outside} are not columns of the {logits.shape[1]}-class logits.")
    others = sorted(set(range(logits.shape[1])) - set(seen))
    if not seen or not others:
        raise ValueError("Calibration needs seen and non-seen classes among the logits' columns.")
    mask = _seen_mask(logits.shape[1], seen).float()
    values = default_grid(logits, seen) if grid is None else np.asarray(grid, dtype=np.float64)
    results = []
    for value in values:
        predictions = (logits - float(value) * mask).argmax(dim=1).numpy()
        scores = metrics.gzsl(predictions, references, seen, others)
        results.append((float(value), scores["seen"], scores["unseen"], scores["harmonic"]))
    best = max(results, key=lambda row: (row[3], -abs(row[0])))
    return CalibrationChoice(*best, grid=results)
