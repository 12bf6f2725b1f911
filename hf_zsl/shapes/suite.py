"""The shapes benchmark as data: the task suite, the held-out parts of the world, and the protocols.

What pretraining sees (:data:`PRETRAINING`) and what the tasks test are defined together here, so
that "held out" means something: pretraining never shows the :data:`UNSEEN_COMBOS` (GZSL unseen
classes), the :data:`HELD_OUT_BACKGROUNDS` (domain shift targets) or any lighting but neutral, and
names colours by their rare words in only ``CaptionStyle.rare_word_rate`` of its captions.

The few-shot suite (:data:`FEWSHOT_TASKS`), like the 11-dataset suite of the few-shot literature,
mixes a task zero-shot CLIP should solve (``colour_shape``) with tasks where zero-shot should fail
while the image features still carry the answer (a lighting shift, a hue shift, rare class words,
finer attributes, new background styles); its mean accuracy is the headline number.
"""

from __future__ import annotations

import dataclasses

import datasets
import numpy as np

from ..protocols import BaseToNewProtocol, ClassAttributes, DomainShiftProtocol, FewShotProtocol, GZSLProtocol
from .captions import CaptionStyle, class_name
from .datasets import load_pairs, load_task
from .tasks import TaskSpec
from .world import BACKGROUNDS, COLOURS, SHAPES, Distribution

SOURCE_BACKGROUNDS = ("plain", "noise", "stripes", "gradient", "waves")
HELD_OUT_BACKGROUNDS = tuple(b for b in BACKGROUNDS if b not in SOURCE_BACKGROUNDS)
COMMON_SHAPES = SHAPES[:8]

# (colour, shape) pairs pretraining never shows: the GZSL unseen classes. Two per colour (one of
# the common shapes, one pentagon or crescent), so every colour and shape is seen in other pairs.
UNSEEN_COMBOS: tuple[tuple[str, str], ...] = tuple(
    pair
    for i, colour in enumerate(COLOURS)
    for pair in ((colour, COMMON_SHAPES[(i + 3) % 8]), (colour, SHAPES[8 + i % 2]))
)

# What contrastive pretraining samples by default (see :func:`pretraining_pairs` for the knobs).
PRETRAINING = Distribution(backgrounds=SOURCE_BACKGROUNDS, lightings=("neutral",), exclude_combos=UNSEEN_COMBOS)

# Colour × common-shape classes pretraining saw (56 classes), on the pretraining backgrounds.
_SEEN = Distribution(shapes=COMMON_SHAPES, backgrounds=SOURCE_BACKGROUNDS, exclude_combos=UNSEEN_COMBOS)

FEWSHOT_TASKS: tuple[TaskSpec, ...] = (
    TaskSpec(
        "colour_shape",
        "colour × shape as pretraining showed them (zero-shot should be strong)",
        distribution=_SEEN,
    ),
    TaskSpec(
        "fine",
        "size × fill × colour × shape, 64 classes: finer attributes the captions name less often",
        label_attributes=("size", "fill", "colour", "shape"),
        distribution=dataclasses.replace(
            _SEEN, colours=("red", "yellow", "green", "cyan"), shapes=("circle", "square", "triangle", "hexagon")
        ),
    ),
    TaskSpec(
        "rare_words",
        "colour × shape named with rarely captioned colour words (crimson star, azure circle)",
        distribution=_SEEN,
        rare_words=True,
    ),
    TaskSpec(
        "warm_light",
        "colour × shape under warm lighting, never seen in pretraining",
        distribution=dataclasses.replace(_SEEN, lightings=("warm",)),
    ),
    TaskSpec(
        "hue_shift",
        "colour × shape with every hue rotated by 40°, never seen in pretraining",
        distribution=dataclasses.replace(_SEEN, lightings=("hue_shift",)),
    ),
    TaskSpec(
        "new_backgrounds",
        "colour × shape on background styles pretraining never showed (dots, grid)",
        distribution=dataclasses.replace(_SEEN, backgrounds=("dots", "grid")),
    ),
)

GZSL_TASK = TaskSpec(
    "gzsl",
    "colour × shape over all 10 shapes (80 classes); the 16 unseen pairs never occur in pretraining",
    distribution=Distribution(backgrounds=SOURCE_BACKGROUNDS),
)
DOMAIN_TASK = TaskSpec(
    "domains",
    "colour × shape; train and validation on the pretraining backgrounds, test on every style",
    distribution=_SEEN,
    split_sizes=(("train", 20), ("validation", 8), ("test", 48)),
    split_overrides=(("test", (("backgrounds", BACKGROUNDS),)),),
)

TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in (*FEWSHOT_TASKS, GZSL_TASK, DOMAIN_TASK)}


def relit(spec: TaskSpec, lighting: str) -> TaskSpec:
    """``spec`` with every split under ``lighting`` (one of :data:`~hf_zsl.shapes.world.LIGHTINGS`).

    The name (part of the generation seed) stays, so a task drawn under one lighting (every task
    here) gives the same scenes in the same order, only lit differently: same classes, same
    indices, other pixels.

    Raises:
        ValueError: for an unknown lighting (the message lists the known ones).
    """
    return dataclasses.replace(spec, distribution=dataclasses.replace(spec.distribution, lightings=(lighting,)))


def task_data(name: str, seed: int = 0, image_size: int = 32, lighting: str | None = None) -> datasets.DatasetDict:
    """The ``train`` / ``validation`` / ``test`` splits of the task ``name`` (cached on disk).

    Args:
        lighting: render every split under this lighting instead of the task's own (:func:`relit`).

    Raises:
        KeyError: for an unknown task (the message lists the known ones).
    """
    if name not in TASKS:
        raise KeyError(f"Unknown shapes task {name!r}; known tasks: {', '.join(TASKS)}.")
    spec = TASKS[name] if lighting is None else relit(TASKS[name], lighting)
    return load_task(spec, seed=seed, image_size=image_size)


def fewshot_suite(
    k: int | None = 16, seed: int = 0, *, data_seed: int = 0, image_size: int = 32, val_policy: str | None = None
) -> dict[str, FewShotProtocol]:
    """One :class:`~hf_zsl.protocols.FewShotProtocol` per task of :data:`FEWSHOT_TASKS`, by task name."""
    return {
        spec.name: FewShotProtocol(task_data(spec.name, data_seed, image_size), k, seed, val_policy=val_policy)
        for spec in FEWSHOT_TASKS
    }


def base_to_new(
    k: int | None = 16,
    seed: int = 0,
    *,
    data_seed: int = 0,
    image_size: int = 32,
    val_policy: str | None = None,
    lighting: str | None = None,
) -> BaseToNewProtocol:
    """Base-to-new over the ``colour_shape`` classes in label-id order (base: red, orange, yellow, green; new: the rest).

    ``lighting``: every split (train, validation, test) under this lighting, e.g. ``"hue_shift"``
    (default: the task's own, neutral); the classes and sampled indices are the clean protocol's.
    """
    data = task_data("colour_shape", data_seed, image_size, lighting)
    return BaseToNewProtocol(data, k, seed, val_policy=val_policy)


def class_attributes(class_names: list[str] | None = None) -> ClassAttributes:
    """The GZSL class-attribute matrix: one-hot colour ⊕ one-hot shape, `(classes, 8 + 10)`.

    Args:
        class_names: rows to build, as colour × shape names (default: the ``gzsl`` task's classes).
    """
    columns = [("colour", c) for c in COLOURS] + [("shape", s) for s in SHAPES]
    classes = GZSL_TASK.classes()
    by_name = {class_name(c): c for c in classes}
    names = class_names or list(by_name)
    matrix = np.array([[float(by_name[n][kind] == value) for kind, value in columns] for n in names])
    return ClassAttributes(matrix, names, [f"{kind}:{value}" for kind, value in columns])


def gzsl(
    k: int | None = None,
    seed: int = 0,
    *,
    data_seed: int = 0,
    image_size: int = 32,
    val_policy: str | None = None,
    lighting: str | None = None,
) -> GZSLProtocol:
    """GZSL over 80 colour × shape classes; unseen = :data:`UNSEEN_COMBOS`, with :func:`class_attributes`.

    ``lighting``: every split (train, validation, test) under this lighting, e.g. ``"hue_shift"``
    (default: the task's own, neutral); the classes and sampled indices are the clean protocol's.
    """
    unseen = [class_name({"colour": c, "shape": s}) for c, s in UNSEEN_COMBOS]
    data = task_data("gzsl", data_seed, image_size, lighting)
    return GZSLProtocol(data, unseen, class_attributes(), k=k, seed=seed, val_policy=val_policy)


def domain_shift(
    k: int | None = 16, seed: int = 0, *, data_seed: int = 0, image_size: int = 32, val_policy: str | None = None
) -> DomainShiftProtocol:
    """Background styles as domains: :data:`SOURCE_BACKGROUNDS` → each of :data:`HELD_OUT_BACKGROUNDS`."""
    data = task_data("domains", data_seed, image_size)
    return DomainShiftProtocol(
        data, "background", SOURCE_BACKGROUNDS, HELD_OUT_BACKGROUNDS, k=k, seed=seed, val_policy=val_policy
    )


PROTOCOLS = {"fewshot": fewshot_suite, "base2new": base_to_new, "gzsl": gzsl, "dg": domain_shift}


def pretraining_pairs(
    n: int,
    seed: int = 0,
    *,
    image_size: int = 32,
    distribution: Distribution = PRETRAINING,
    captions: CaptionStyle = CaptionStyle(),
) -> datasets.Dataset:
    """``n`` image–caption pairs from the pretraining distribution (cached on disk).

    Args:
        n: number of pairs.
        seed: generation seed (use another seed than the tasks' ``data_seed`` for fresh images).
        image_size: image side in pixels.
        distribution: what images show; the default :data:`PRETRAINING` holds out the GZSL unseen
            pairs, the held-out backgrounds and every non-neutral lighting. Widen it with
            ``dataclasses.replace(PRETRAINING, ...)`` to move a knob.
        captions: how captions name attributes; ``CaptionStyle(rare_word_rate=...)`` sets how
            rarely the rare colour words of the ``rare_words`` task appear.

    Returns:
        A :class:`datasets.Dataset` with ``image``, ``caption`` and the attribute columns.
    """
    return load_pairs(n, seed=seed, image_size=image_size, distribution=distribution, captions=captions)
