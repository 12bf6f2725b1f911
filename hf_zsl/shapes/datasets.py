"""Shapes images as :mod:`datasets` objects, generated deterministically and cached on disk.

A dataset is a pure function of (generator version, what is generated, seed, image size). It is
written once under ``$HF_ZSL_CACHE/shapes/<name>-<fingerprint>`` (default ``~/.cache/hf_zsl``) with
``save_to_disk`` and memory-mapped by every later call, in any process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable, Sequence

import datasets
import numpy as np
from PIL import Image

from ..cache import cache_root
from ..quiet import quiet_datasets
from .captions import CaptionStyle, describe
from .render import render_scene
from .tasks import TaskSpec
from .world import ATTRIBUTES, Distribution, Scene, sample_scenes

# Bump when the images, captions or columns a given set of arguments produces change.
GENERATOR_VERSION = 1
_CHUNK = 2048  # scenes drawn (and held in memory) at a time by generate_pairs


def cache_dir() -> str:
    """Where generated shapes datasets live: ``$HF_ZSL_CACHE/shapes`` (default ``~/.cache/hf_zsl/shapes``)."""
    return cache_root("shapes")


def fingerprint(arguments: dict) -> str:
    """Digest (16 hex chars) of the generator version and ``arguments`` (JSON-serialisable)."""
    payload = json.dumps({"version": GENERATOR_VERSION, **arguments}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _rng(seed: int, *names: str) -> np.random.Generator:
    """A generator keyed by ``seed`` and names (stable across processes, unlike ``hash``)."""
    return np.random.default_rng([seed, *(zlib.crc32(n.encode()) for n in names)])


def _png(array: np.ndarray) -> dict:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return {"bytes": buffer.getvalue(), "path": None}


def _features(class_names: Sequence[str] | None) -> datasets.Features:
    columns = {"image": datasets.Image()}
    if class_names is not None:
        columns["label"] = datasets.ClassLabel(names=list(class_names))
    columns["caption"] = datasets.Value("string")
    columns.update({name: datasets.Value("string") for name in ATTRIBUTES})
    return datasets.Features(columns)


def scenes_dataset(
    scenes: Sequence[Scene],
    rng: np.random.Generator,
    image_size: int = 32,
    labels: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    captions: CaptionStyle = CaptionStyle(),
) -> datasets.Dataset:
    """Render and caption ``scenes`` into an in-memory dataset (captions draw from ``rng`` in order).

    Columns: ``image`` (:class:`datasets.Image`, RGB ``image_size`` square), ``label``
    (:class:`datasets.ClassLabel` over ``class_names``; only when ``labels`` is given), ``caption``
    and one string column per attribute (``shape``, ``colour``, ``size``, ``fill``, ``background``,
    ``lighting``).
    """
    features = _features(class_names if labels is not None else None)
    columns = {name: [] for name in features}
    for scene in scenes:
        columns["image"].append(_png(render_scene(scene, image_size)))
        columns["caption"].append(describe(scene, rng, captions))
        for name, value in scene.attributes().items():
            columns[name].append(value)
    if labels is not None:
        columns["label"] = list(labels)
    return datasets.Dataset.from_dict(columns, features=features)


def cached(name: str, arguments: dict, build: Callable[[], datasets.Dataset | datasets.DatasetDict]):
    """Load ``name``-``fingerprint(arguments)`` from the cache, building and saving it first if absent.

    Writes go to a temporary folder renamed into place, so concurrent processes never read a
    half-written dataset. Returns what :func:`datasets.load_from_disk` returns (memory-mapped).
    """
    folder = os.path.join(cache_dir(), f"{name}-{fingerprint(arguments)}")
    if not os.path.isdir(folder):
        os.makedirs(cache_dir(), exist_ok=True)
        staging = tempfile.mkdtemp(prefix=f".{name}-", dir=cache_dir())
        try:
            built = build()
            with quiet_datasets():
                built.save_to_disk(staging)
            os.replace(staging, folder)
        except OSError:
            if not os.path.isdir(folder):  # a concurrent writer that won the rename is fine
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return datasets.load_from_disk(folder)


def generate_task(spec: TaskSpec, seed: int = 0, image_size: int = 32) -> datasets.DatasetDict:
    """Generate every split of ``spec`` (uncached; see :func:`load_task`).

    Each split holds ``n`` images of every class (``spec.split_sizes``) in a seeded random order,
    drawn from ``spec.split_distribution(split)``; ``label`` is a :class:`datasets.ClassLabel`
    over ``spec.class_names()``.
    """
    classes, names = spec.classes(), spec.class_names()
    splits = {}
    for split, per_class in spec.split_sizes:
        rng = _rng(seed, spec.name, split)
        distribution = spec.split_distribution(split)
        scenes, labels = [], []
        for label, values in enumerate(classes):
            scenes += sample_scenes(rng, per_class, distribution, **values)
            labels += [label] * per_class
        order = rng.permutation(len(scenes))
        splits[split] = scenes_dataset(
            [scenes[i] for i in order], rng, image_size, labels=[labels[i] for i in order], class_names=names
        )
    return datasets.DatasetDict(splits)


def load_task(spec: TaskSpec, seed: int = 0, image_size: int = 32) -> datasets.DatasetDict:
    """:func:`generate_task`, cached on disk (the second call only memory-maps the files)."""
    arguments = {"kind": "task", "spec": dataclasses.asdict(spec), "seed": seed, "image_size": image_size}
    return cached(f"task-{spec.name}", arguments, lambda: generate_task(spec, seed, image_size))


def generate_pairs(
    n: int,
    seed: int = 0,
    image_size: int = 32,
    distribution: Distribution = Distribution(),
    captions: CaptionStyle = CaptionStyle(),
) -> datasets.Dataset:
    """``n`` captioned images drawn from ``distribution`` (uncached): columns ``image``, ``caption``
    and the attributes, no ``label``. Scenes are drawn chunk by chunk, so memory holds one chunk
    of scenes at a time."""
    rng = _rng(seed, "pairs")
    chunks = [
        scenes_dataset(sample_scenes(rng, min(_CHUNK, n - start), distribution), rng, image_size, captions=captions)
        for start in range(0, max(n, 1), _CHUNK)
    ]
    return datasets.concatenate_datasets(chunks)


def load_pairs(
    n: int,
    seed: int = 0,
    image_size: int = 32,
    distribution: Distribution = Distribution(),
    captions: CaptionStyle = CaptionStyle(),
) -> datasets.Dataset:
    """:func:`generate_pairs`, cached on disk."""
    arguments = {
        "kind": "pairs",
        "n": n,
        "seed": seed,
        "image_size": image_size,
        "distribution": dataclasses.asdict(distribution),
        "captions": dataclasses.asdict(captions),
    }
    return cached("pairs", arguments, lambda: generate_pairs(n, seed, image_size, distribution, captions))
