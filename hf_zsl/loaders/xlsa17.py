"""xlsa17 "Proposed Splits" (Xian et al., TPAMI 2018) as a :class:`~hf_zsl.protocols.GZSLProtocol`.

An xlsa17 dataset folder (``xlsa17/data/AWA2``, ``CUB``, ``SUN``, ``APY``, ``FLO``) holds two
MATLAB files, read with :func:`scipy.io.loadmat`:

* ``res101.mat``: ``features`` `(2048, N)` ResNet-101 features, ``labels`` `(N, 1)` 1-based class
  ids, ``image_files`` `(N, 1)` cell array of image paths on the authors' machines (e.g.
  ``/BS/xian/work/data/Animals_with_Attributes2//JPEGImages/antelope/antelope_10047.jpg``).
* ``att_splits.mat``: ``att`` `(A, C)` class attributes (column ``c`` is class ``c + 1``),
  ``allclasses_names`` `(C, 1)` cell array of class names, and `(M, 1)` arrays of 1-based row
  indices into ``res101.mat``: ``trainval_loc``, ``test_seen_loc``, ``test_unseen_loc`` (the
  evaluation split) and ``train_loc``, ``val_loc`` (the split for choosing hyper-parameters, whose
  validation classes have no images in ``train_loc``).
"""

from __future__ import annotations

import os
import re
from collections import Counter

import datasets
import numpy as np
import pyarrow as pa
import scipy.io

from ..protocols import ClassAttributes, GZSLProtocol
from .files import check_inside, require_files

RES101, ATT_SPLITS = "res101.mat", "att_splits.mat"
RES101_KEYS = ("features", "labels", "image_files")
TEST_KEYS = ("test_seen_loc", "test_unseen_loc")
ATT_KEYS = ("att", "allclasses_names", *TEST_KEYS)
VALIDATION_KEYS = ("train_loc", "val_loc")


def readable_class_name(name: str) -> str:
    """A class name as words: ``"grizzly+bear"`` → ``"grizzly bear"``,
    ``"001.Black_footed_Albatross"`` → ``"Black footed Albatross"`` (numeric prefix dropped,
    ``+`` and ``_`` as spaces, runs of spaces collapsed)."""
    name = re.sub(r"^\d+\.", "", name.strip())
    return " ".join(name.replace("+", " ").replace("_", " ").split())


def _read_mat(path: str, keys: tuple[str, ...]) -> dict:
    """The variables of a ``.mat`` file, checked to contain ``keys``."""
    if not os.path.isfile(path):
        raise ValueError(
            f"{path} does not exist: an xlsa17 dataset folder (e.g. xlsa17/data/AWA2) holds {RES101} and {ATT_SPLITS}."
        )
    try:
        mat = scipy.io.loadmat(path)
    except Exception as error:  # scipy raises MatReadError, ValueError, OSError, ... for a damaged file
        raise ValueError(
            f"{path} is not a readable MATLAB file ({type(error).__name__}: {error}); download xlsa17 again."
        ) from error
    missing = [key for key in keys if key not in mat]
    if missing:
        found = sorted(key for key in mat if not key.startswith("__"))
        raise ValueError(f"{path} lacks {missing} (it has {found}); is it xlsa17's {os.path.basename(path)}?")
    return mat


def _strings(cells: np.ndarray, what: str) -> list[str]:
    """A MATLAB cell array of strings (after loadmat: object array of 1-element string arrays) as a list.

    Raises:
        ValueError: naming ``what`` and the row of an empty or blank entry.
    """
    strings = []
    for row, cell in enumerate(np.asarray(cells).reshape(-1)):
        values = np.asarray(cell).reshape(-1)
        text = str(values[0]).strip() if values.size else ""
        if not text:
            raise ValueError(f"{what} has an empty entry at row {row + 1}; every entry must name something.")
        strings.append(text)
    return strings


def _whole_numbers(values, what: str) -> np.ndarray:
    """``values`` flattened to int64, checked to be whole numbers (MATLAB stores indices as doubles too)."""
    values = np.asarray(values).reshape(-1)
    if values.dtype.kind == "f":
        bad = values[~np.isfinite(values) | (values != np.round(values))]
        if bad.size:
            raise ValueError(f"{what} must hold whole 1-based indices, got e.g. {bad[:5].tolist()}.")
    elif values.dtype.kind not in "iu":
        raise ValueError(f"{what} must hold whole 1-based indices, got values of type {values.dtype}.")
    return values.astype(np.int64)


def _outside_hint(outside: np.ndarray) -> str:
    """What to check when indices fall outside their 1-based range."""
    if (outside == 0).any():
        return "xlsa17 indices are 1-based (MATLAB): 0 suggests 0-based indices, add 1 to each"
    return "are the two files from the same dataset?"


def _class_names(att: dict, raw: bool) -> list[str]:
    """``allclasses_names`` as stored (``raw``) or made readable, checked to be unique."""
    stored = _strings(att["allclasses_names"], f"{ATT_SPLITS}'s allclasses_names")
    names = stored if raw else [readable_class_name(name) for name in stored]
    clashing = sorted(name for name, count in Counter(names).items() if count > 1)
    if clashing:
        hint = "" if raw else "; try raw_class_names=True"
        raise ValueError(f"Class names {clashing[:5]} repeat in {ATT_SPLITS}{hint}.")
    return names


def _attribute_matrix(att: dict, n_classes: int) -> np.ndarray:
    """``att`` as float32 `(attributes, classes)`, checked to have one column per class."""
    matrix = np.asarray(att["att"], dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[1] != n_classes:
        hint = " (it looks transposed: xlsa17 stores one column per class)" if matrix.ndim == 2 and matrix.shape[0] == n_classes else ""
        raise ValueError(f"{ATT_SPLITS}'s att has shape {matrix.shape}; expected (attributes, {n_classes} classes){hint}.")
    if not np.isfinite(matrix).all():
        raise ValueError(f"{ATT_SPLITS}'s att has NaN or infinite values; every class needs finite attributes.")
    return matrix


def _rows(att: dict, key: str, n_rows: int) -> np.ndarray:
    """The 0-based ``res101.mat`` rows of the 1-based index array ``att[key]``."""
    rows = _whole_numbers(att[key], f"{ATT_SPLITS}'s {key}")
    if rows.size == 0:
        raise ValueError(f"{ATT_SPLITS}'s {key} is empty; every split needs images.")
    outside = rows[(rows < 1) | (rows > n_rows)]
    if outside.size:
        raise ValueError(
            f"{ATT_SPLITS}'s {key} has indices outside 1..{n_rows} (the rows of {RES101}), e.g. "
            f"{outside[:5].tolist()}: {_outside_hint(outside)}."
        )
    values, counts = np.unique(rows, return_counts=True)
    if (counts > 1).any():
        raise ValueError(
            f"{ATT_SPLITS}'s {key} lists {int((counts > 1).sum())} images more than once (e.g. index "
            f"{int(values[counts > 1][0])}); each image may appear once, or it would count twice."
        )
    return rows - 1


def _labels(res: dict, n_classes: int) -> np.ndarray:
    """The 0-based class of every ``res101.mat`` row, checked against the feature and file counts."""
    labels = _whole_numbers(res["labels"], f"{RES101}'s labels")
    counts = {
        "labels": len(labels),
        "features columns": res["features"].shape[1],
        "image_files": res["image_files"].size,
    }
    if len(set(counts.values())) > 1:
        raise ValueError(f"{RES101} is inconsistent: it has {counts} (one per image each).")
    outside = sorted(set(labels[(labels < 1) | (labels > n_classes)].tolist()))
    if outside:
        raise ValueError(
            f"{RES101} has class ids {outside[:5]} outside 1..{n_classes} (the classes of {ATT_SPLITS}): "
            f"{_outside_hint(np.asarray(outside))}."
        )
    return labels - 1


def _check_splits(labels: np.ndarray, rows: dict[str, np.ndarray], class_names: list[str]) -> list[str]:
    """Check that no image is both trained on and tested and no unseen class has training or seen-test
    images (``rows``: 0-based rows by ``*_loc`` key); returns the classes of ``test_unseen_loc``."""
    tested = np.concatenate([rows[key] for key in TEST_KEYS])
    trained = np.concatenate([indices for key, indices in rows.items() if key not in TEST_KEYS])
    leaked = np.intersect1d(trained, tested)
    if leaked.size:
        raise ValueError(f"{leaked.size} images are in both the training and the test indices of {ATT_SPLITS}.")
    unseen = set(labels[rows["test_unseen_loc"]].tolist())
    overlap = unseen & set(labels[np.concatenate([trained, rows["test_seen_loc"]])].tolist())
    if overlap:
        names = sorted(class_names[c] for c in overlap)
        raise ValueError(f"Classes {names[:5]} of test_unseen_loc also have seen (training or test-seen) images.")
    return [class_names[c] for c in sorted(unseen)]


def _existing_suffix(parts: list[str], image_root: str) -> int | None:
    """How many trailing ``parts`` name a file under ``image_root`` (the fewest that do), or ``None``."""
    return next((n for n in range(1, len(parts) + 1) if os.path.isfile(os.path.join(image_root, *parts[-n:]))), None)


def map_image_paths(stored: list[str], image_root: str) -> list[str]:
    """Move the authors' absolute image paths under ``image_root``.

    Keeps the shortest trailing part of the first stored path that exists under ``image_root``
    (e.g. ``antelope/antelope_10047.jpg`` when ``image_root`` is AWA2's ``JPEGImages``) and keeps
    that many trailing parts of every path; a path not found that way gets its own shortest existing
    trailing part (APY mixes VOC and aYahoo images stored at different depths).

    Raises:
        ValueError: if a stored path climbs with ``..`` (its trailing parts could leave ``image_root``), no
            trailing part of the first path exists, or some mapped file is missing.
    """
    parts = [[part for part in path.split("/") if part] for path in stored]
    for row, path in enumerate(parts):
        check_inside("/".join(path), f"row {row + 1} of {RES101}'s image_files")
    keep = _existing_suffix(parts[0], image_root)
    if keep is None:
        raise ValueError(
            f"No trailing part of the stored image path {stored[0]!r} exists under {image_root}: pass as image_root "
            "the folder holding the benchmark's images (e.g. Animals_with_Attributes2 or its JPEGImages folder)."
        )
    paths = []
    for path in parts:
        mapped = os.path.join(image_root, *path[-keep:])
        if not os.path.isfile(mapped):
            own = _existing_suffix(path, image_root)
            mapped = mapped if own is None else os.path.join(image_root, *path[-own:])
        paths.append(mapped)
    require_files(paths, f"image_root {image_root} matched {stored[0]!r} but not every stored image.")
    return paths


def _dataset(labels: np.ndarray, class_names: list[str], images: list[str] | None, features: np.ndarray | None):
    """Every ``res101.mat`` row as a :class:`datasets.Dataset`: ``image`` (if ``images``), ``label``,
    and ``res101`` (if ``features``, `(N, 2048)` float32, as fixed-length lists)."""
    columns, schema = {}, {}
    if images is not None:
        columns["image"], schema["image"] = images, datasets.Image()
    columns["label"], schema["label"] = labels, datasets.ClassLabel(names=class_names)
    data = datasets.Dataset.from_dict(columns, features=datasets.Features(schema))
    if features is None:
        return data
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(features.reshape(-1)), features.shape[1])
    return datasets.concatenate_datasets([data, datasets.Dataset(pa.table({"res101": vectors}))], axis=1)


def load_xlsa17(
    dataset_dir: str,
    image_root: str | None = None,
    include_resnet_features: bool = False,
    val_policy: str | None = None,
    k: int | None = None,
    seed: int = 0,
    raw_class_names: bool = False,
) -> GZSLProtocol:
    """The GZSL protocol of an xlsa17 dataset folder (file formats in the module docstring).

    Splits: ``train`` = the ``trainval_loc`` images, ``test`` = ``test_seen_loc`` then
    ``test_unseen_loc`` images; the unseen classes are those of ``test_unseen_loc``; the attributes
    are ``att.T`` with attribute names ``a0``, ``a1``, .... With a validation policy other than
    ``"none"``, ``train`` is ``train_loc`` and ``validation`` is ``val_loc`` instead (Xian et al.'s
    split for choosing hyper-parameters: its validation classes have no training images), so
    final runs use the default (no validation, all of ``trainval_loc``). Either way the classes of
    ``val_loc`` (when the file has it) are the protocol's ``val_unseen_classes``, the seen classes a
    method holds out to choose its hyper-parameters (CFZSL's calibration).

    Args:
        dataset_dir: folder holding ``res101.mat`` and ``att_splits.mat``.
        image_root: folder holding the benchmark's images (see :func:`map_image_paths`); ``None``
            for a features-only dataset (needs ``include_resnet_features``).
        include_resnet_features: add the ``res101`` column (`(2048,)` float32 per image).
        val_policy: the protocol's validation policy (see above); ``None`` means ``"none"``.
        k, seed: training images per seen class (``None``: all, the standard protocol) and sampling seed.
        raw_class_names: keep ``allclasses_names`` as stored instead of :func:`readable_class_name`.

    Returns:
        A :class:`~hf_zsl.protocols.GZSLProtocol` whose data has columns ``image`` (when
        ``image_root``), ``label`` (``ClassLabel`` over every class, in ``allclasses_names`` order)
        and ``res101`` (when asked).

    Raises:
        ValueError: on missing files or keys, indices or class ids out of range, count mismatches,
            classes both seen and unseen, images both trained and tested, clashing class names,
            missing images, or no ``image_root`` without ``include_resnet_features``.
    """
    if image_root is None and not include_resnet_features:
        raise ValueError(
            "load_xlsa17 needs image_root (the folder of the benchmark's images) to give an image column; "
            "without images, pass include_resnet_features=True to use the ResNet-101 features only."
        )
    validation = val_policy is not None and val_policy.replace(" ", "") != "none"
    if validation and k is not None:
        raise ValueError(
            f"xlsa17's validation classes have no images in train_loc, so k={k} shots per seen class cannot be "
            "drawn with a validation policy; use k=None or val_policy=None."
        )
    res = _read_mat(os.path.join(dataset_dir, RES101), RES101_KEYS)
    training_keys = VALIDATION_KEYS if validation else ("trainval_loc",)
    att = _read_mat(os.path.join(dataset_dir, ATT_SPLITS), ATT_KEYS + training_keys)
    class_names = _class_names(att, raw_class_names)
    matrix = _attribute_matrix(att, len(class_names))
    labels = _labels(res, len(class_names))
    rows = {key: _rows(att, key, len(labels)) for key in training_keys + TEST_KEYS}
    unseen = _check_splits(labels, rows, class_names)
    images = None if image_root is None else map_image_paths(_strings(res["image_files"], f"{RES101}'s image_files"), image_root)
    features = np.ascontiguousarray(res["features"].T, dtype=np.float32) if include_resnet_features else None
    everything = _dataset(labels, class_names, images, features)
    data = datasets.DatasetDict({"train": everything.select(rows[training_keys[0]])})
    if validation:
        data["validation"] = everything.select(rows["val_loc"])
    data["test"] = everything.select(np.concatenate([rows[key] for key in TEST_KEYS]))
    attributes = ClassAttributes(matrix.T, class_names, [f"a{i}" for i in range(matrix.shape[0])])
    val_classes = None
    if "val_loc" in att:  # Xian et al.'s validation classes: the seen classes held out to choose hyper-parameters
        val_rows = rows["val_loc"] if validation else _rows(att, "val_loc", len(labels))
        val_classes = [class_names[c] for c in sorted(set(labels[val_rows].tolist()))]
    return GZSLProtocol(
        data, unseen, attributes, k=k, seed=seed, val_policy=val_policy, val_unseen_classes=val_classes
    )
