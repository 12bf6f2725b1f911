"""Training losses beyond the models' own cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def batch_hard_triplet_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, margin: float, normalize: bool = True
) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans et al., 2017): for every anchor, its farthest positive and
    nearest negative in the batch, ``mean(max(0, margin + d(a, p) − d(a, n)))``.

    Args:
        embeddings: `(batch, dim)`.
        labels: `(batch,)` class ids.
        margin: the margin, in Euclidean distance (of L2-normalised embeddings with ``normalize``).
        normalize: L2-normalise the embeddings first (distances then lie in [0, 2]).

    Returns:
        A scalar; anchors without another image of their class or without a negative are left out
        (0 when no anchor qualifies).
    """
    if embeddings.ndim != 2 or labels.shape != embeddings.shape[:1]:
        raise ValueError(f"Need (batch, dim) embeddings and (batch,) labels, got {tuple(embeddings.shape)} and {tuple(labels.shape)}.")
    x = F.normalize(embeddings, dim=-1) if normalize else embeddings
    squared = (x * x).sum(-1)
    distances = (squared[:, None] + squared[None, :] - 2 * x @ x.t()).clamp(min=1e-12).sqrt()
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    hardest_positive = distances.masked_fill(~positive, float("-inf")).max(dim=1).values
    hardest_negative = distances.masked_fill(same, float("inf")).min(dim=1).values
    valid = positive.any(dim=1) & (~same).any(dim=1)
    if not valid.any():
        return embeddings.sum() * 0.0
    return F.relu(margin + hardest_positive[valid] - hardest_negative[valid]).mean()
