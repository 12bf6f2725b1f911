"""Loading what ``--model`` names, and the output layout of ``hf-zsl train`` (DESIGN §6).

A single-task run writes its model at ``DIR``; a suite run (several tasks, e.g. the shapes few-shot
suite) writes one model per task at ``DIR/<task>/``, plus ``DIR/eval_results.json`` and a
``DIR/README.md`` index. Each model folder and the run folder hold a ``run.json``
(:func:`run_info`) naming the method, protocol, shots, seed, dataset and task(s), so ``hf-zsl eval``
can evaluate a run without being told how it was trained.
"""

from __future__ import annotations

import json
import os

from .constants import EMBEDDED_BASES

RUN_FILE = "run.json"


def run_info(method: str, protocol: str, shots: int | None, seed: int, dataset: str, base: str, tasks: list[str]) -> dict:
    """What ``run.json`` records of a run (a model folder's ``tasks`` is its own task)."""
    return {"method": method, "protocol": protocol, "shots": shots, "seed": seed, "dataset": dataset, "base": base,
            "tasks": list(tasks)}


def read_run(folder: str) -> dict | None:
    """``folder/run.json`` (``None`` when ``folder`` is not a local run or model folder written by ``train``)."""
    path = os.path.join(folder, RUN_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def task_folders(folder: str) -> dict[str, str]:
    """The per-task model folders of a suite run folder, by task name (empty for anything else)."""
    if not os.path.isdir(folder) or os.path.isfile(os.path.join(folder, "config.json")):
        return {}
    from .factory import folder_model_type, is_hf_zsl_type

    found = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isdir(path) and is_hf_zsl_type(folder_model_type(path)):
            found[name] = path
    return found


def check_not_suite(name_or_path: str) -> None:
    """Refuse a suite run folder where one model is needed, naming its task folders."""
    tasks = task_folders(name_or_path)
    if tasks:
        raise ValueError(
            f"{name_or_path} is a suite run with one model per task; load one task's folder: "
            f"{', '.join(tasks.values())} (hf-zsl eval --model {name_or_path} evaluates each on its own task)."
        )


def load(name_or_path: str):
    """A saved hf_zsl model, or zero-shot CLIP over a base encoder (folder, Hub id, ``"embedded"``), in eval mode.

    Raises:
        ValueError: for a suite run folder (one model per task: load a task's folder), or a damaged config.
    """
    from transformers import AutoModelForZeroShotImageClassification

    from .factory import build, folder_model_type, is_hf_zsl_type
    from .modeling.modeling_base import HfZslPreTrainedModel

    check_not_suite(name_or_path)
    if os.path.isdir(name_or_path) and is_hf_zsl_type(folder_model_type(name_or_path)):
        return AutoModelForZeroShotImageClassification.from_pretrained(name_or_path).eval()
    if name_or_path in EMBEDDED_BASES or os.path.isdir(name_or_path):
        return build("zeroshot", name_or_path)
    model = AutoModelForZeroShotImageClassification.from_pretrained(name_or_path)
    if not isinstance(model, HfZslPreTrainedModel):
        return build("zeroshot", name_or_path)
    return model.eval()
