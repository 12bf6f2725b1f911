"""CoOp's split files (``split_zhou_<Dataset>.json``, Zhou et al.) as a :class:`datasets.DatasetDict`.

A split file is one JSON object::

    {"train": [[relative_image_path, label_int, class_name], ...], "val": [...], "test": [...]}

with paths relative to the dataset's image folder (``oxford_pets/images``, ``caltech-101/101_ObjectCategories``,
...). :func:`load_coop_split` turns it into ``train`` / ``validation`` / ``test`` splits with an
``image`` column (:class:`datasets.Image`, read lazily from the files) and a ``label`` column
(:class:`datasets.ClassLabel` named by the file's class names, in label order), ready for
:class:`~hf_zsl.protocols.FewShotProtocol` and :class:`~hf_zsl.protocols.BaseToNewProtocol`.
"""

from __future__ import annotations

import json
import os
from collections import Counter

import datasets

from .files import check_inside, require_files

SPLITS = {"train": "train", "val": "validation", "test": "test"}
ENTRY = "[relative_image_path, label_int, class_name]"


def _entries(record, split_file: str) -> dict[str, list[tuple[str, int, str]]]:
    """The ``(path, label, class name)`` triples of each JSON split, validated, names stripped."""
    if not isinstance(record, dict) or any(key not in record for key in SPLITS):
        found = list(record) if isinstance(record, dict) else type(record).__name__
        raise ValueError(
            f"{split_file} is not a CoOp split file: it needs the keys {list(SPLITS)} (found {found}), "
            f"each a list of {ENTRY}."
        )
    entries = {}
    for key in SPLITS:
        if not isinstance(record[key], list) or not record[key]:
            raise ValueError(f"Split {key!r} of {split_file} is empty (or not a list); it needs {ENTRY} entries.")
        entries[key] = [_entry(item, key, i, split_file) for i, item in enumerate(record[key])]
    return entries


def _entry(item, key: str, position: int, split_file: str) -> tuple[str, int, str]:
    """One JSON entry as ``(path, label, stripped class name)``, or a ValueError naming it."""
    valid = (
        isinstance(item, list)
        and len(item) == 3
        and isinstance(item[0], str)
        and isinstance(item[1], int)
        and not isinstance(item[1], bool)
        and isinstance(item[2], str)
    )
    if not valid:
        raise ValueError(f"Entry {position} of split {key!r} in {split_file} is {item!r}; expected {ENTRY}.")
    if not item[0].strip() or not item[2].strip():
        raise ValueError(
            f"Entry {position} of split {key!r} in {split_file} has an empty image path or class name: {item!r}."
        )
    check_inside(item[0], f"entry {position} of split {key!r} in {split_file}")
    return item[0], item[1], item[2].strip()


def _class_names(entries: dict[str, list[tuple[str, int, str]]], split_file: str) -> list[str]:
    """Class names ordered by label; each label must have one name, labels must be 0..C-1."""
    names: dict[int, str] = {}
    for key, rows in entries.items():
        for _, label, name in rows:
            if names.setdefault(label, name) != name:
                raise ValueError(
                    f"Label {label} is named both {names[label]!r} and {name!r} (split {key!r} of {split_file}); "
                    "give each label a single class name."
                )
    expected = set(range(len(names)))
    if set(names) != expected:
        raise ValueError(
            f"The {len(names)} labels of {split_file} must be 0..{len(names) - 1}; missing "
            f"{sorted(expected - set(names))[:10]}, unexpected {sorted(set(names) - expected)[:10]}. "
            "Renumber the labels contiguously from 0."
        )
    untrained = sorted(set(names) - {label for _, label, _ in entries["train"]})
    if untrained:
        raise ValueError(
            f"Classes {[names[label] for label in untrained][:10]} of {split_file} have no image in 'train' "
            "(they appear only in 'val' / 'test'); every class needs training images."
        )
    ordered = [names[label] for label in range(len(names))]
    repeated = sorted(name for name, count in Counter(ordered).items() if count > 1)
    if repeated:
        raise ValueError(
            f"Class names {repeated} of {split_file} belong to several labels; class names must be unique."
        )
    return ordered


def _check_disjoint(entries: dict[str, list[tuple[str, int, str]]], split_file: str) -> None:
    """Raise if an image path is listed in two splits (training on a test image would leak it)."""
    for first, second in (("train", "test"), ("val", "test"), ("train", "val")):
        shared = sorted({path for path, _, _ in entries[first]} & {path for path, _, _ in entries[second]})
        if shared:
            raise ValueError(
                f"{len(shared)} images of {split_file} are in both {first!r} and {second!r} (e.g. {shared[0]!r}); "
                "the splits must not share images."
            )


def find_image_root(split_file: str, relative_path: str) -> str:
    """The folder next to ``split_file`` (itself or a direct subfolder) that holds ``relative_path``.

    CoOp keeps a split file beside its image folder (``oxford_pets/split_zhou_OxfordPets.json`` and
    ``oxford_pets/images/``), whose name varies by dataset; this finds it from one listed image.

    Raises:
        ValueError: if no such folder holds the image.
    """
    folder = os.path.dirname(os.path.abspath(split_file))
    subfolders = sorted(entry.path for entry in os.scandir(folder) if entry.is_dir())
    for root in [folder, *subfolders]:
        if os.path.exists(os.path.join(root, relative_path)):
            return root
    raise ValueError(
        f"Cannot find the image {relative_path!r} of {split_file} in {folder} or its subfolders: put the "
        "dataset's image folder next to the split file (as CoOp's DATA layout does), or pass image_root."
    )


def load_coop_split(split_file: str, image_root: str | None = None) -> datasets.DatasetDict:
    """Load a CoOp split JSON as ``train`` / ``validation`` / ``test`` splits.

    Args:
        split_file: path of a ``split_zhou_<Dataset>.json`` file (format in the module docstring).
        image_root: the folder the JSON's image paths are relative to; by default the folder next to
            the split file that holds the first training image (:func:`find_image_root`).

    Returns:
        A :class:`datasets.DatasetDict` whose splits have columns ``image`` (:class:`datasets.Image`,
        file paths) and ``label`` (:class:`datasets.ClassLabel`, names = the JSON's class names in
        label order, whitespace stripped, otherwise verbatim).

    Raises:
        ValueError: on a missing or malformed file, missing keys, empty splits, malformed entries
            (empty path or name, a path reaching outside the image folder), a label with two names, a name with two labels, labels that are not
            0..C-1, a class without training images, an image in two splits, or image files that do not exist.
    """
    if not os.path.isfile(split_file):
        raise ValueError(f"{split_file} does not exist: pass the path of a split_zhou_<Dataset>.json file.")
    with open(split_file) as handle:
        try:
            record = json.load(handle)
        except json.JSONDecodeError as error:
            raise ValueError(f"{split_file} is not valid JSON ({error}); download the split file again.") from error
    entries = _entries(record, split_file)
    class_names = _class_names(entries, split_file)
    _check_disjoint(entries, split_file)
    if image_root is None:
        image_root = find_image_root(split_file, entries["train"][0][0])
    paths = {key: [os.path.join(image_root, path) for path, _, _ in rows] for key, rows in entries.items()}
    require_files(
        [path for split in paths.values() for path in split],
        f"Check that image_root ({image_root}) is the folder the paths of {split_file} are relative to.",
    )
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=class_names)})
    return datasets.DatasetDict(
        {
            split: datasets.Dataset.from_dict(
                {"image": paths[key], "label": [label for _, label, _ in entries[key]]}, features=features
            )
            for key, split in SPLITS.items()
        }
    )
