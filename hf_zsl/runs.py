"""Protocol runs shared by the command line, the recipes and the demo: build the protocols a
command names, evaluate a model on them, and write result records (DESIGN §6)."""

from __future__ import annotations

import json
import os
import time

import datasets
import numpy as np

from . import shapes
from .evaluation import chance_levels, evaluate_protocol
from .modeling.modeling_base import HfZslPreTrainedModel
from .protocols import BaseToNewProtocol, EvaluationProtocol, FewShotProtocol

PROTOCOL_NAMES = ("fewshot", "base2new", "gzsl", "dg")
SHAPES = "shapes"


def load_data(dataset: str) -> datasets.DatasetDict:
    """Splits of a saved ``DatasetDict`` folder, an image folder, or a Hub dataset id."""
    if os.path.isdir(dataset):
        if os.path.exists(os.path.join(dataset, "dataset_dict.json")):
            return datasets.load_from_disk(dataset)
        return datasets.load_dataset("imagefolder", data_dir=dataset)
    return datasets.load_dataset(dataset)


def make_protocols(protocol: str, dataset: str = SHAPES, shots: int | None = 16, seed: int = 1) -> dict[str, EvaluationProtocol]:
    """The protocol objects a run evaluates, by task name.

    On the shapes world (``dataset="shapes"``) every protocol exists; ``fewshot`` is the task suite
    (one protocol per task). On other data, ``fewshot`` and ``base2new`` need only a ``ClassLabel``
    column; GZSL and domain shift need class / domain lists and are built in Python
    (:class:`hf_zsl.protocols.GZSLProtocol`, :class:`hf_zsl.protocols.DomainShiftProtocol`).
    """
    if protocol not in PROTOCOL_NAMES:
        raise ValueError(f"Unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOL_NAMES)}.")
    if dataset == SHAPES:
        if protocol == "fewshot":
            return shapes.fewshot_suite(shots, seed)
        if protocol == "base2new":
            return {"colour_shape": shapes.base_to_new(shots, seed)}
        if protocol == "gzsl":
            return {"gzsl": shapes.gzsl(shots, seed)}
        return {"domains": shapes.domain_shift(shots, seed)}
    data = load_data(dataset)
    if protocol == "fewshot":
        return {os.path.basename(dataset.rstrip("/")): FewShotProtocol(data, shots, seed)}
    if protocol == "base2new":
        return {os.path.basename(dataset.rstrip("/")): BaseToNewProtocol(data, shots, seed)}
    raise ValueError(
        f"The {protocol!r} protocol needs more than a dataset name (unseen classes or domains): build "
        "hf_zsl.protocols.GZSLProtocol / DomainShiftProtocol in Python, or use --dataset shapes."
    )


def evaluate_run(
    model: HfZslPreTrainedModel,
    protocol: str,
    protocols: dict[str, EvaluationProtocol],
    method: str,
    shots: int | None,
    seed: int,
    dataset: str = SHAPES,
    train_seconds: float = 0.0,
) -> dict:
    """One result record: the protocol's metrics (a suite's mean, with per-task numbers) + metadata."""
    per_task = {name: evaluate_protocol(model, p) for name, p in protocols.items()}
    chance = {name: chance_levels(p) for name, p in protocols.items()}
    keys = [k for k, v in next(iter(per_task.values())).items() if isinstance(v, float)]
    record = {
        "method": method,
        "protocol": protocol,
        "dataset": dataset,
        "shots": shots if method != "zeroshot" else 0,
        "seed": seed,
        "train_seconds": round(train_seconds, 3),
        **{k: float(np.mean([r[k] for r in per_task.values()])) for k in keys},
        "chance": {k: float(np.mean([c[k] for c in chance.values() if k in c])) for k in keys if any(k in c for c in chance.values())},
        "protocol_details": {name: p.to_dict() for name, p in protocols.items()},
    }
    if len(per_task) > 1 or protocol == "fewshot":
        record["tasks"] = per_task
    elif "domains" in next(iter(per_task.values())):
        record["domains"] = next(iter(per_task.values()))["domains"]
    return record


def write_json(records: list[dict] | dict, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(records, handle, indent=2)


class Timer:
    """``with Timer() as t: ...``; ``t.seconds`` afterwards."""

    def __enter__(self):
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._start
