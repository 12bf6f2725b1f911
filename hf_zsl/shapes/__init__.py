"""The shapes world: a deterministic generator of small images of coloured shapes, with captions,
``datasets`` objects, the few-shot task suite and every evaluation protocol (DESIGN §5).

Quick start::

    from hf_zsl import shapes

    suite = shapes.fewshot_suite(k=16, seed=1)       # {task name: FewShotProtocol}
    pairs = shapes.pretraining_pairs(50_000, seed=7)  # image + caption, for contrastive pretraining
    words = shapes.shapes_vocabulary()                # for hf_zsl.tokenizer.build_clip_tokenizer
"""

from .captions import CaptionStyle, class_name, describe, shapes_vocabulary
from .datasets import cache_dir, generate_pairs, generate_task, load_pairs, load_task, scenes_dataset
from .render import render_scene
from .suite import (
    FEWSHOT_TASKS,
    GZSL_TASK,
    DOMAIN_TASK,
    HELD_OUT_BACKGROUNDS,
    PRETRAINING,
    PROTOCOLS,
    SOURCE_BACKGROUNDS,
    TASKS,
    UNSEEN_COMBOS,
    base_to_new,
    class_attributes,
    domain_shift,
    fewshot_suite,
    gzsl,
    pretraining_pairs,
    task_data,
)
from .tasks import TaskSpec
from .world import ATTRIBUTES, BACKGROUNDS, COLOURS, FILLS, LIGHTINGS, SHAPES, SIZES, Distribution, Scene, sample_scenes

__all__ = [
    "ATTRIBUTES",
    "BACKGROUNDS",
    "COLOURS",
    "DOMAIN_TASK",
    "FEWSHOT_TASKS",
    "FILLS",
    "GZSL_TASK",
    "HELD_OUT_BACKGROUNDS",
    "LIGHTINGS",
    "PRETRAINING",
    "PROTOCOLS",
    "SHAPES",
    "SIZES",
    "SOURCE_BACKGROUNDS",
    "TASKS",
    "UNSEEN_COMBOS",
    "CaptionStyle",
    "Distribution",
    "Scene",
    "TaskSpec",
    "base_to_new",
    "cache_dir",
    "class_attributes",
    "class_name",
    "describe",
    "domain_shift",
    "fewshot_suite",
    "generate_pairs",
    "generate_task",
    "gzsl",
    "load_pairs",
    "load_task",
    "pretraining_pairs",
    "render_scene",
    "sample_scenes",
    "scenes_dataset",
    "shapes_vocabulary",
    "task_data",
]
