"""Evaluation protocols as objects, over any :class:`datasets.Dataset` splits with a ``ClassLabel`` column.

A protocol fixes what training may see (which images, which classes, which validation images) and
what is tested, so every method is trained and scored on exactly the same data:

* :class:`FewShotProtocol` — ``k`` images per class (``k``, ``seed`` → the same indices everywhere).
* :class:`BaseToNewProtocol` — train on the first ⌈n/2⌉ classes in label order, test base and new apart.
* :class:`GZSLProtocol` — train on seen classes, test seen and unseen images over all classes.
* :class:`DomainShiftProtocol` — train on source domains, test on each target domain.

Training code gets :meth:`EvaluationProtocol.training_view`, which raises on any test access.
Protocols serialise to JSON with their indices (:meth:`~EvaluationProtocol.to_json`), and
:meth:`~EvaluationProtocol.to_dict` is the record for results files and model cards.

Example::

    data = load_dataset("imagefolder", data_dir=...)            # train / validation / test
    protocol = FewShotProtocol(data, k=16, seed=1)
    fit(model, protocol.training_view())                         # .train, .val, .class_names
    accuracy = evaluate(model, protocol.test)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence

import datasets
import numpy as np

from .quiet import quiet_datasets

VAL_POLICIES = ("fewshot_min(k,N)", "full_val", "none")
_FEWSHOT_VAL = re.compile(r"fewshot_min\(k,\s*([1-9]\d*)\)")


def _column(dataset: datasets.Dataset, name: str) -> np.ndarray:
    """One column of ``dataset`` as a numpy array (through any indices mapping)."""
    return np.asarray(dataset.select_columns([name]).with_format("numpy")[name])


def labels_digest(dataset: datasets.Dataset, label_column: str = "label") -> str:
    """Digest (16 hex chars) of a split's class names and label sequence: equal digests, equal indices."""
    names = dataset.features[label_column].names
    payload = json.dumps(names).encode() + _column(dataset, label_column).astype(np.int64).tobytes()
    return hashlib.sha256(payload).hexdigest()[:16]


def select_per_class(
    labels: np.ndarray,
    candidates: np.ndarray,
    classes: Sequence[int],
    k: int,
    seed: int,
    class_names: Sequence[str],
    strict: bool = True,
) -> np.ndarray:
    """Pick ``k`` of ``candidates`` (indices into ``labels``) for each label id in ``classes``.

    Classes are visited in sorted order with one ``numpy`` generator seeded by ``seed``, so the same
    (labels, candidates, classes, k, seed) give the same indices in every process.

    Args:
        labels: `(n,)` integer labels of a whole split.
        candidates: indices of ``labels`` that may be picked.
        classes: the label ids to pick for.
        k: images per class.
        seed: the sampling seed.
        class_names: names of the label ids (for error messages).
        strict: raise if a class has fewer than ``k`` candidates; otherwise take all of them.

    Returns:
        The picked indices, sorted, `(≤ k · classes,)`.

    Raises:
        ValueError: with ``strict``, naming the first class that has fewer than ``k`` candidates.
    """
    rng = np.random.default_rng(seed)
    picked = []
    for label in sorted(classes):
        pool = candidates[labels[candidates] == label]
        if not len(pool) and strict:
            raise ValueError(
                f"class {class_names[label]!r} has no training image the protocol may use; give every class "
                "training images (and, for domain shift, images in a source domain)."
            )
        if len(pool) < k and strict:
            raise ValueError(
                f"class {class_names[label]!r} has {len(pool)} training images but {k} shots were asked; "
                f"use --shots ≤ {len(pool)}"
            )
        picked.append(rng.choice(pool, size=min(k, len(pool)), replace=False))
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


def relabel(dataset: datasets.Dataset, class_names: Sequence[str], label_column: str = "label") -> datasets.Dataset:
    """``dataset`` with its labels re-indexed into ``class_names`` (a subset of its classes)."""
    names = dataset.features[label_column].names
    if list(class_names) == list(names):
        return dataset
    new_id = {names.index(name): i for i, name in enumerate(class_names)}
    labels = [new_id[int(label)] for label in _column(dataset, label_column)]
    with quiet_datasets():
        return dataset.remove_columns(label_column).add_column(
            label_column, labels, feature=datasets.ClassLabel(names=list(class_names))
        )


@dataclasses.dataclass
class ClassAttributes:
    """A class-attribute matrix: ``matrix[c, a]`` is how much class ``class_names[c]`` has attribute ``a``.

    Attributes:
        matrix: `(classes, attributes)` float32 array.
        class_names: row names.
        attribute_names: column names.
    """

    matrix: np.ndarray
    class_names: list[str]
    attribute_names: list[str]

    def __post_init__(self):
        self.matrix = np.asarray(self.matrix, dtype=np.float32)
        self.class_names, self.attribute_names = list(self.class_names), list(self.attribute_names)
        expected = (len(self.class_names), len(self.attribute_names))
        if self.matrix.shape != expected:
            raise ValueError(
                f"Attribute matrix has shape {self.matrix.shape}, expected {expected} (classes × attributes)."
            )
        if not np.isfinite(self.matrix).all():
            bad = sorted({self.class_names[row] for row in np.argwhere(~np.isfinite(self.matrix))[:, 0]})
            raise ValueError(f"The attribute rows of {bad[:10]} hold NaN or infinite values; fill them with numbers.")
        for role, names in (("class", self.class_names), ("attribute", self.attribute_names)):
            repeated = sorted(name for name, count in Counter(names).items() if count > 1)
            if repeated:
                raise ValueError(f"{role.capitalize()} names {repeated[:10]} occur more than once; each row / column needs its own name.")

    def rows(self, class_names: Sequence[str]) -> np.ndarray:
        """The `(len(class_names), attributes)` rows of the given classes, in that order.

        Raises:
            ValueError: naming the classes the matrix has no row for.
        """
        missing = [name for name in class_names if name not in self.class_names]
        if missing:
            raise ValueError(
                f"The attribute matrix has no row for {missing[:10]} ({len(missing)} classes); add a row per class."
            )
        return self.matrix[[self.class_names.index(name) for name in class_names]]

    def to_torch(self):
        """The matrix as a float32 :class:`torch.Tensor`."""
        import torch

        return torch.from_numpy(self.matrix)

    def to_dict(self) -> dict:
        """A JSON-serialisable form; ``ClassAttributes(**d)`` rebuilds it."""
        return {
            "matrix": self.matrix.tolist(),
            "class_names": self.class_names,
            "attribute_names": self.attribute_names,
        }


class TrainingView:
    """What training code may see of a protocol: its training data and class lists, never its tests.

    Attribute access is forwarded to the protocol for the names in its ``training_attributes``;
    anything else that could reach test images (``test``, ``test_splits``, ``data``) raises
    :class:`PermissionError`.
    """

    def __init__(self, protocol: EvaluationProtocol):
        self._protocol = protocol

    def __getattr__(self, name: str):
        protocol = self.__dict__["_protocol"]
        if name in protocol.training_attributes:
            return getattr(protocol, name)
        if "test" in name or name == "data":
            raise PermissionError(
                f"Training code may not read {name!r} of the {protocol.kind} protocol: test data is off limits "
                f"during training. Select models with the validation policy ({protocol.val_policy!r}) via `.val`."
            )
        available = sorted(protocol.training_attributes)
        raise AttributeError(f"{name!r} is not available to training; available: {available}.")

    def __repr__(self) -> str:
        return f"TrainingView({self._protocol!r})"


def _check_label_range(split: datasets.Dataset, label_column: str, name: str, num_classes: int) -> None:
    """Raise if a row of ``split`` has a label outside ``0..num_classes - 1`` (``datasets`` writes -1 for
    "no label", which would silently index the last class or count as a wrong answer)."""
    labels = np.asarray(split[label_column], dtype=np.int64)
    outside = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if outside.size:
        raise ValueError(
            f"{outside.size} rows of the {name!r} split have labels outside 0..{num_classes - 1} (e.g. row "
            f"{int(outside[0])}: {int(labels[outside[0]])}; -1 means 'no label'); drop them, e.g. "
            f"split.filter(lambda row: row[{label_column!r}] >= 0)."
        )


class EvaluationProtocol:
    """Common machinery: train / validation index selection, test splits, guard, serialisation.

    Args:
        data: the splits (a :class:`datasets.DatasetDict` or a mapping of names to datasets); every
            split has the same ``ClassLabel`` column ``label_column``.
        k: training images per class, or ``None`` for every eligible training image.
        seed: the sampling seed of the training (and few-shot validation) images.
        val_policy: ``"fewshot_min(k,N)"`` (min(k, N) validation images per class), ``"full_val"``
            (every eligible validation image) or ``"none"``; by default ``"fewshot_min(k,4)"`` when
            there is a validation split and ``k``, ``"full_val"`` without ``k``, else ``"none"``.
        label_column, train_split, val_split, test_split: column and split names in ``data``.
    """

    kind = "protocol"
    training_attributes = frozenset(
        {
            "kind", "k", "seed", "val_policy", "label_column", "class_names", "train_class_names",
            "train", "val", "train_indices", "val_indices", "to_dict",
        }
    )

    def __init__(
        self,
        data: Mapping[str, datasets.Dataset],
        k: int | None = None,
        seed: int = 0,
        val_policy: str | None = None,
        label_column: str = "label",
        train_split: str = "train",
        val_split: str = "validation",
        test_split: str = "test",
    ):
        for split in (train_split, test_split):
            if split not in data:
                raise ValueError(f"The {self.kind} protocol needs a {split!r} split; the data has {list(data)}.")
        if test_split in (train_split, val_split):
            raise ValueError(
                f"The test split {test_split!r} cannot also be the training or validation split: model selection "
                "never reads test data. Train and validate on splits of their own."
            )
        feature = data[train_split].features.get(label_column)
        if not isinstance(feature, datasets.ClassLabel):
            raise ValueError(f"Column {label_column!r} of the {train_split!r} split must be a datasets.ClassLabel.")
        for split in (val_split, test_split):
            other = data[split].features.get(label_column) if split in data else feature
            if not isinstance(other, datasets.ClassLabel) or list(other.names) != list(feature.names):
                names = getattr(other, "names", other)
                raise ValueError(
                    f"The {split!r} split's {label_column!r} column ({names!r}) differs from the {train_split!r} "
                    f"split's ({feature.names}); every split needs the same ClassLabel, names in the same order "
                    "(align them with Dataset.align_labels_with_mapping or cast_column)."
                )
        for split in (train_split, val_split, test_split):
            if split in data:
                _check_label_range(data[split], label_column, split, len(feature.names))
        if k is not None and k < 1:
            raise ValueError(f"k must be a positive number of images per class (or None for all), got {k}.")
        self.data = data
        self.k, self.seed, self.label_column = k, seed, label_column
        self.splits = {"train": train_split, "validation": val_split if val_split in data else None, "test": test_split}
        self.class_names: list[str] = list(feature.names)
        self.val_policy = self._resolve_val_policy(val_policy)
        self._arguments = {
            "k": k, "seed": seed, "val_policy": self.val_policy, "label_column": label_column,
            "train_split": train_split, "val_split": val_split, "test_split": test_split,
        }

    def _select(self) -> None:
        """Fix the training and validation indices (subclasses call this at the end of ``__init__``)."""
        train = self.data[self.splits["train"]]
        labels = _column(train, self.label_column)
        candidates = self._eligible(train)
        classes = [self.class_names.index(name) for name in self._image_classes()]
        self.train_indices = (
            candidates
            if self.k is None
            else select_per_class(labels, candidates, classes, self.k, self.seed, self.class_names)
        )
        self.val_indices = None
        if self.val_policy != "none":
            val = self.data[self.splits["validation"]]
            candidates = self._eligible(val)
            if self.val_policy != "full_val":
                per_class = min(self.k, int(_FEWSHOT_VAL.fullmatch(self.val_policy).group(1)))
                val_labels = _column(val, self.label_column)
                candidates = select_per_class(
                    val_labels, candidates, classes, per_class, self.seed + 1, self.class_names, strict=False
                )
            self.val_indices = candidates

    def _resolve_val_policy(self, policy: str | None) -> str:
        has_val = self.splits["validation"] is not None
        if policy is None:
            policy = "none" if not has_val else ("fewshot_min(k,4)" if self.k else "full_val")
        policy = policy.replace(" ", "")
        if policy not in ("full_val", "none") and not _FEWSHOT_VAL.fullmatch(policy):
            raise ValueError(f"Unknown validation policy {policy!r}; use one of {VAL_POLICIES}.")
        if policy != "none" and not has_val:
            raise ValueError(f"Validation policy {policy!r} needs a validation split; the data has {list(self.data)}.")
        if policy.startswith("fewshot_min") and self.k is None:
            raise ValueError("Validation policy 'fewshot_min(k,N)' needs k; use 'full_val' with k=None.")
        return policy

    # What subclasses change ------------------------------------------------------------------
    @property
    def train_class_names(self) -> list[str]:
        """The classes training learns (and the ``ClassLabel`` names of :attr:`train`)."""
        return self.class_names

    def _image_classes(self) -> list[str]:
        """The classes whose images training and validation see (default: :attr:`train_class_names`)."""
        return self.train_class_names

    def _eligible(self, split: datasets.Dataset) -> np.ndarray:
        """Indices of ``split`` training and validation may draw from: images of :meth:`_image_classes`."""
        wanted = [self.class_names.index(name) for name in self._image_classes()]
        return np.flatnonzero(np.isin(_column(split, self.label_column), wanted))

    def test_splits(self) -> dict[str, datasets.Dataset]:
        """The named test sets (each with the ``ClassLabel`` its predictions range over)."""
        return {"test": self.data[self.splits["test"]]}

    def _details(self) -> dict:
        """Protocol-specific entries of :meth:`to_dict`."""
        return {}

    # Shared API ------------------------------------------------------------------------------
    def _training_subset(self, role: str, indices: np.ndarray) -> datasets.Dataset:
        subset = self.data[self.splits[role]].select(indices)
        return relabel(subset, self.train_class_names, self.label_column)

    @property
    def train(self) -> datasets.Dataset:
        """The training images (``k`` per class when ``k`` is set), labelled over :attr:`train_class_names`."""
        return self._training_subset("train", self.train_indices)

    @property
    def val(self) -> datasets.Dataset | None:
        """The validation images the policy allows (``None`` under ``"none"``)."""
        return None if self.val_indices is None else self._training_subset("validation", self.val_indices)

    def training_view(self) -> TrainingView:
        """A view for training code: :attr:`train`, :attr:`val` and class lists; test access raises."""
        return TrainingView(self)

    @property
    def data_fingerprint(self) -> str:
        """Digest of the class names and label sequences of every split the protocol uses."""
        used = {role: name for role, name in self.splits.items() if name}
        digests = {role: labels_digest(self.data[name], self.label_column) for role, name in used.items()}
        return hashlib.sha256(json.dumps(digests, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        """The protocol's record for results files and model cards (no indices; see :meth:`to_json`)."""
        sizes = {"train": len(self.train_indices)}
        if self.val_indices is not None:
            sizes["validation"] = len(self.val_indices)
        sizes.update({("test" if n == "test" else f"test/{n}"): len(s) for n, s in self.test_splits().items()})
        used = {role: name for role, name in self.splits.items() if name}
        return {
            "kind": self.kind,
            "k": self.k,
            "seed": self.seed,
            "val_policy": self.val_policy,
            "class_names": self.class_names,
            "train_class_names": self.train_class_names,
            **self._details(),
            "split_sizes": sizes,
            "fingerprint": self.data_fingerprint,
            "dataset_fingerprints": {role: getattr(self.data[n], "_fingerprint", None) for role, n in used.items()},
        }

    def to_json(self) -> str:
        """:meth:`to_dict` plus the constructor arguments and the exact training / validation indices."""
        record = self.to_dict()
        record["arguments"] = self._arguments
        record["train_indices"] = self.train_indices.tolist()
        record["val_indices"] = None if self.val_indices is None else self.val_indices.tolist()
        return json.dumps(record)

    @classmethod
    def from_json(cls, text: str, data: Mapping[str, datasets.Dataset]) -> EvaluationProtocol:
        """Rebuild a protocol saved by :meth:`to_json` over ``data``, with exactly the saved indices.

        Called on :class:`EvaluationProtocol`, the saved ``kind`` picks the class.

        Raises:
            ValueError: if the record is of another kind than ``cls``, or ``data`` is not the data
                it was made on (different classes or labels).
        """
        record = json.loads(text)
        kinds = {c.kind: c for c in (FewShotProtocol, BaseToNewProtocol, GZSLProtocol, DomainShiftProtocol)}
        target = kinds.get(record["kind"])
        if target is None or not issubclass(target, cls):
            raise ValueError(f"Cannot load a {record['kind']!r} protocol record as {cls.__name__}.")
        protocol = target(data, **record["arguments"])
        if protocol.data_fingerprint != record["fingerprint"]:
            raise ValueError(
                f"The protocol record was made on other data (fingerprint {record['fingerprint']}, "
                f"this data {protocol.data_fingerprint}): class names or labels differ."
            )
        protocol.train_indices = protocol._checked_indices(record["train_indices"], "train")
        if record["val_indices"] is not None:
            protocol.val_indices = protocol._checked_indices(record["val_indices"], "validation")
        return protocol

    def _checked_indices(self, saved: Sequence[int], role: str) -> np.ndarray:
        """Saved ``role`` indices as an array, refused unless each is a distinct image the protocol may use."""
        indices = np.asarray(saved, dtype=np.int64)
        foreign = np.setdiff1d(indices, self._eligible(self.data[self.splits[role]]))
        if foreign.size or len(np.unique(indices)) != indices.size:
            raise ValueError(
                f"The protocol record's {role} indices repeat an image or name {foreign.size} images the "
                f"{self.kind} protocol may not train on (e.g. {foreign[:5].tolist()}: other classes or out of range); "
                "the record was altered or made by another protocol. Save it again with to_json()."
            )
        return indices

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(k={self.k}, seed={self.seed}, classes={len(self.class_names)}, "
            f"train={len(self.train_indices)}, val_policy={self.val_policy!r})"
        )


class FewShotProtocol(EvaluationProtocol):
    """``k`` training images per class (all classes), tested on the whole test split.

    ``(data, k, seed)`` determine the indices; ``FewShotProtocol(data, 16, seed=1).train_indices``
    is the same in every process and for every method. See :class:`EvaluationProtocol` for arguments.

    Raises:
        ValueError: if a class has fewer than ``k`` training images (the message names the class).
    """

    kind = "fewshot"

    def __init__(self, data: Mapping[str, datasets.Dataset], k: int | None, seed: int = 0, **kwargs):
        super().__init__(data, k=k, seed=seed, **kwargs)
        self._select()

    @property
    def test(self) -> datasets.Dataset:
        """The test split."""
        return self.test_splits()["test"]


class BaseToNewProtocol(EvaluationProtocol):
    """Base-to-new generalisation: base = the first ⌈n/2⌉ classes in label-id order, new = the rest.

    As CoOp / CoCoOp's ``subsample_classes`` (the sorted label ids, ``m = ceil(n / 2)``), so a CoOp split
    file gives the published base / new classes.

    Training (and validation) sees base classes only, labelled over :attr:`base_classes`;
    :meth:`test_splits` gives ``"base"`` (labelled over the base classes) and ``"new"`` (labelled
    over the new classes), each scored among its own classes. Arguments as :class:`EvaluationProtocol`.
    """

    kind = "base2new"
    training_attributes = EvaluationProtocol.training_attributes | {"base_classes", "new_classes"}

    def __init__(self, data: Mapping[str, datasets.Dataset], k: int | None = None, seed: int = 0, **kwargs):
        super().__init__(data, k=k, seed=seed, **kwargs)
        if len(self.class_names) < 2:
            raise ValueError(f"Base-to-new needs at least two classes (one base, one new); the data has {self.class_names}.")
        cut = math.ceil(len(self.class_names) / 2)
        self.base_classes, self.new_classes = self.class_names[:cut], self.class_names[cut:]
        self._select()

    @property
    def train_class_names(self) -> list[str]:
        return self.base_classes

    def test_splits(self) -> dict[str, datasets.Dataset]:
        test = self.data[self.splits["test"]]
        labels = _column(test, self.label_column)
        splits = {}
        for name, classes in (("base", self.base_classes), ("new", self.new_classes)):
            ids = [self.class_names.index(c) for c in classes]
            splits[name] = relabel(test.select(np.flatnonzero(np.isin(labels, ids))), classes, self.label_column)
        return splits

    def _details(self) -> dict:
        return {"base_classes": self.base_classes, "new_classes": self.new_classes}


class GZSLProtocol(EvaluationProtocol):
    """Generalised zero-shot learning: train on seen classes, test seen and unseen over all classes.

    Training and validation images are the seen-class images of their splits (labels keep the full
    class list: unseen names and attributes are known at training time, their images are not).
    :meth:`test_splits` gives ``"seen"`` and ``"unseen"`` test images, labelled over all classes.

    For choosing what only unseen classes can tell (e.g. a calibration of seen against unseen scores),
    the seen classes are further split, like xlsa17's train / val classes: :attr:`val_unseen_classes`
    (held out of training to play unseen classes in validation) and :attr:`val_seen_classes` (the rest).

    Args:
        data: splits as for :class:`EvaluationProtocol` (xlsa17's ``trainval`` as the train split,
            ``test_seen`` + ``test_unseen`` as the test split).
        unseen_classes: the unseen class names; the rest are seen.
        attributes: optional class-attribute matrix over (at least) every class.
        val_unseen_classes: seen classes to hold out as validation-unseen classes (e.g. xlsa17's val
            classes); default: ``round(val_unseen_fraction × seen)`` of them (at least one when there
            are two or more seen classes), drawn with ``seed``.
        val_unseen_fraction: the share of seen classes held out when ``val_unseen_classes`` is not given.
        k, seed, **kwargs: as :class:`EvaluationProtocol` (``k=None``: every seen training image).
    """

    kind = "gzsl"
    training_attributes = EvaluationProtocol.training_attributes | {
        "seen_classes", "unseen_classes", "attributes", "val_seen_classes", "val_unseen_classes"
    }

    def __init__(
        self,
        data: Mapping[str, datasets.Dataset],
        unseen_classes: Sequence[str],
        attributes: ClassAttributes | Mapping | None = None,
        k: int | None = None,
        seed: int = 0,
        val_unseen_classes: Sequence[str] | None = None,
        val_unseen_fraction: float = 0.2,
        **kwargs,
    ):
        super().__init__(data, k=k, seed=seed, **kwargs)
        unknown = sorted(set(unseen_classes) - set(self.class_names))
        if unknown:
            raise ValueError(f"Unseen classes {unknown} are not classes of the data.")
        if not unseen_classes or len(set(unseen_classes)) == len(self.class_names):
            raise ValueError("GZSL needs at least one seen and one unseen class.")
        self.unseen_classes = [c for c in self.class_names if c in set(unseen_classes)]
        self.seen_classes = [c for c in self.class_names if c not in set(unseen_classes)]
        if isinstance(attributes, Mapping):
            attributes = ClassAttributes(**attributes)
        if attributes is not None:
            rows = attributes.rows(self.class_names)
            attributes = ClassAttributes(rows, self.class_names, attributes.attribute_names)
        self.attributes = attributes
        self.val_unseen_classes = self._split_seen(val_unseen_classes, val_unseen_fraction)
        self.val_seen_classes = [c for c in self.seen_classes if c not in set(self.val_unseen_classes)]
        self._arguments.update(
            unseen_classes=self.unseen_classes,
            attributes=None if attributes is None else attributes.to_dict(),
            val_unseen_classes=self.val_unseen_classes,
        )
        self._select()

    def _split_seen(self, chosen: Sequence[str] | None, fraction: float) -> list[str]:
        """The validation-unseen classes: ``chosen`` (checked), or a seeded draw of ``fraction`` of the seen ones."""
        if chosen is not None:
            outside = sorted(set(chosen) - set(self.seen_classes))
            if outside:
                raise ValueError(f"val_unseen_classes {outside} are not seen classes.")
            if len(set(chosen)) == len(self.seen_classes):
                raise ValueError("val_unseen_classes must leave at least one seen class to train on.")
            return [c for c in self.seen_classes if c in set(chosen)]
        if not 0 <= fraction < 1:
            raise ValueError(f"val_unseen_fraction must be in [0, 1), got {fraction}.")
        count = min(max(1, round(fraction * len(self.seen_classes))), len(self.seen_classes) - 1) if fraction else 0
        picked = np.random.default_rng([self.seed, 20]).choice(len(self.seen_classes), size=count, replace=False)
        return [self.seen_classes[i] for i in sorted(picked)]

    def _image_classes(self) -> list[str]:
        return self.seen_classes

    def test_splits(self) -> dict[str, datasets.Dataset]:
        test = self.data[self.splits["test"]]
        labels = _column(test, self.label_column)
        unseen = np.isin(labels, [self.class_names.index(c) for c in self.unseen_classes])
        return {"seen": test.select(np.flatnonzero(~unseen)), "unseen": test.select(np.flatnonzero(unseen))}

    def _details(self) -> dict:
        names = None if self.attributes is None else self.attributes.attribute_names
        return {
            "seen_classes": self.seen_classes,
            "unseen_classes": self.unseen_classes,
            "val_unseen_classes": self.val_unseen_classes,
            "attribute_names": names,
        }


class DomainShiftProtocol(EvaluationProtocol):
    """Domain shift: train on images of source domains, test on each target domain apart.

    Domains are the values of ``domain_column`` (e.g. a background style). :meth:`test_splits`
    holds one test set per source domain and per target domain, keyed by the domain value.

    Args:
        data: splits as for :class:`EvaluationProtocol`.
        domain_column: the column holding each image's domain.
        source_domains: domains training and validation draw from.
        target_domains: held-out domains to test (default: every other value in the test split).
        k, seed, **kwargs: as :class:`EvaluationProtocol`.
    """

    kind = "dg"
    training_attributes = EvaluationProtocol.training_attributes | {"domain_column", "source_domains", "target_domains"}

    def __init__(
        self,
        data: Mapping[str, datasets.Dataset],
        domain_column: str,
        source_domains: Sequence[str],
        target_domains: Sequence[str] | None = None,
        k: int | None = None,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(data, k=k, seed=seed, **kwargs)
        test_domains = set(_column(self.data[self.splits["test"]], domain_column).tolist())
        train_domains = set(_column(self.data[self.splits["train"]], domain_column).tolist())
        absent = [d for d in source_domains if d not in train_domains] + [
            d for d in target_domains or () if d not in test_domains
        ]
        if absent:
            raise ValueError(
                f"Domains {absent} do not occur in the data's {domain_column!r} column (source domains must be in "
                f"the train split, {sorted(train_domains)[:10]}; target domains in the test split)."
            )
        if target_domains is None:
            target_domains = sorted(test_domains - set(source_domains))
        overlap = sorted(set(source_domains) & set(target_domains))
        if overlap or not source_domains or not target_domains:
            raise ValueError(
                f"Need disjoint, non-empty source and target domains; got {source_domains} → {target_domains}."
            )
        self.domain_column = domain_column
        self.source_domains, self.target_domains = list(source_domains), list(target_domains)
        self._arguments.update(
            domain_column=domain_column, source_domains=self.source_domains, target_domains=self.target_domains
        )
        self._select()

    def _eligible(self, split: datasets.Dataset) -> np.ndarray:
        in_source = np.flatnonzero(np.isin(_column(split, self.domain_column), self.source_domains))
        return np.intersect1d(super()._eligible(split), in_source)

    def test_splits(self) -> dict[str, datasets.Dataset]:
        test = self.data[self.splits["test"]]
        domains = _column(test, self.domain_column)
        return {d: test.select(np.flatnonzero(domains == d)) for d in self.source_domains + self.target_domains}

    def _details(self) -> dict:
        return {
            "domain_column": self.domain_column,
            "source_domains": self.source_domains,
            "target_domains": self.target_domains,
        }
