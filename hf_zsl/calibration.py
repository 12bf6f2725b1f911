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
    seen = torch.zeros(logits.shape[1], dtype=torch.bool)
    seen[list(seen_columns)] = True
    margin = logits[:, seen].max(dim=1).values - logits[:, ~seen].max(dim=1).values
    low, high = min(0.0, float(margin.min())), max(0.0, float(margin.max()))
    return np.unique(np.concatenate([[0.0], np.linspace(low, high + 1e-6, points)]))


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
    """
    logits = torch.as_tensor(logits, dtype=torch.float32)
    references = np.asarray(references, dtype=np.int64)
    seen = sorted(int(c) for c in seen_columns)
    others = sorted(set(range(logits.shape[1])) - set(seen))
    if not seen or not others:
        raise ValueError("Calibration needs seen and non-seen classes among the logits' columns.")
    mask = torch.zeros(logits.shape[1])
    mask[seen] = 1.0
    values = default_grid(logits, seen) if grid is None else np.asarray(grid, dtype=np.float64)
    results = []
    for value in values:
        predictions = (logits - float(value) * mask).argmax(dim=1).numpy()
        scores = metrics.gzsl(predictions, references, seen, others)
        results.append((float(value), scores["seen"], scores["unseen"], scores["harmonic"]))
    best = max(results, key=lambda row: (row[3], -abs(row[0])))
    return CalibrationChoice(*best, grid=results)
