"""Class-balanced batch sampling for metric learning: P classes × K images per batch."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch


class _Refilling:
    """A stream of ``items`` in seeded random order, reshuffled each time it runs out.

    ``take(n)`` returns ``n`` distinct items whenever ``n ≤ len(items)``: a new permutation puts the
    items still pending from the previous one last.
    """

    def __init__(self, items: np.ndarray, rng: np.random.Generator):
        self.items, self.rng, self.pending = items, rng, []

    def take(self, n: int) -> list:
        while len(self.pending) < n:
            order = self.rng.permutation(self.items).tolist()
            waiting = set(self.pending)
            self.pending += [i for i in order if i not in waiting] + [i for i in order if i in waiting]
        taken, self.pending = self.pending[:n], self.pending[n:]
        return taken


class PKSampler(torch.utils.data.Sampler[int]):
    """Dataset indices in consecutive blocks of ``P × K``: ``K`` images of each of ``P`` distinct classes.

    Use it as a ``DataLoader`` ``sampler`` with ``batch_size = P × K`` (``Trainer``: return it from
    ``_get_train_sampler``), so every batch has positives for a triplet loss. Classes are visited in
    seeded random order, each once before any repeats; a class's images likewise (a class with fewer
    than ``K`` images repeats some within a batch). Epoch ``e`` depends only on ``(seed, e)``; the epoch
    advances after each full iteration, or is set with :meth:`set_epoch`.

    Args:
        labels: `(num_images,)` class id of every dataset row.
        classes_per_batch: ``P`` (capped at the number of classes).
        images_per_class: ``K``.
        seed: the sampling seed.
        batches_per_epoch: default ``max(1, num_images // (P × K))``, about one pass over the images.
    """

    def __init__(
        self,
        labels: Sequence[int],
        classes_per_batch: int,
        images_per_class: int,
        seed: int = 0,
        batches_per_epoch: int | None = None,
    ):
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.size == 0 or labels.dtype.kind not in "iu":
            raise ValueError(f"PKSampler needs a non-empty 1-D sequence of integer class labels, got dtype {labels.dtype}.")
        labels = labels.astype(np.int64)
        for name, value in (("P", classes_per_batch), ("K", images_per_class), ("batches_per_epoch", batches_per_epoch)):
            if value is not None and (not isinstance(value, int | np.integer) or value < 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        self.classes = np.unique(labels)
        self.rows = {int(c): np.flatnonzero(labels == c) for c in self.classes}
        self.p = min(classes_per_batch, len(self.classes))
        self.k = images_per_class
        self.batches = batches_per_epoch if batches_per_epoch is not None else max(1, len(labels) // (self.p * self.k))
        self.seed, self.epoch = seed, 0

    @property
    def batch_size(self) -> int:
        """``P × K``, the ``DataLoader`` batch size to use with this sampler."""
        return self.p * self.k

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.batches * self.batch_size

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        classes = _Refilling(self.classes, rng)
        images = {c: _Refilling(rows, rng) for c, rows in self.rows.items()}
        for _ in range(self.batches):
            for label in classes.take(self.p):
                yield from (int(i) for i in images[int(label)].take(self.k))
