"""A task of the shapes world as data: which attributes make the label, what the images draw from."""

from __future__ import annotations

import dataclasses
import itertools

from .captions import class_name
from .world import Distribution


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One labelled dataset of the shapes world (a :class:`datasets.DatasetDict` once generated).

    Attributes:
        name: the task's name (also part of its generation seed).
        description: what the task measures, for tables and cards.
        label_attributes: attributes whose value combination is the class, e.g. ``("colour", "shape")``.
        distribution: the attribute values every split draws from; classes are the product of the
            label attributes' values minus ``distribution.exclude_combos``.
        split_sizes: images per class in each split, as ``((split, n), ...)``.
        split_overrides: per split, fields of ``distribution`` replaced for that split, as
            ``((split, ((field, value), ...)), ...)`` — e.g. a test split with other backgrounds.
        rare_words: class names use the rarely captioned colour words ("crimson star").
    """

    name: str
    description: str
    label_attributes: tuple[str, ...] = ("colour", "shape")
    distribution: Distribution = Distribution()
    split_sizes: tuple[tuple[str, int], ...] = (("train", 20), ("validation", 8), ("test", 20))
    split_overrides: tuple[tuple[str, tuple[tuple[str, object], ...]], ...] = ()
    rare_words: bool = False

    def classes(self) -> list[dict[str, str]]:
        """The label attribute values of each class, in label order."""
        pools = [self.distribution.pool(a) for a in self.label_attributes]
        classes = [dict(zip(self.label_attributes, values)) for values in itertools.product(*pools)]
        if {"colour", "shape"} <= set(self.label_attributes):
            excluded = set(map(tuple, self.distribution.exclude_combos))
            classes = [c for c in classes if (c["colour"], c["shape"]) not in excluded]
        return classes

    def class_names(self) -> list[str]:
        """The class names, in label order (the ``ClassLabel`` names)."""
        return [class_name(c, rare_words=self.rare_words) for c in self.classes()]

    def split_distribution(self, split: str) -> Distribution:
        """The distribution of ``split``: :attr:`distribution` with that split's overrides."""
        overrides = dict(dict(self.split_overrides).get(split, ()))
        return dataclasses.replace(self.distribution, **overrides)
