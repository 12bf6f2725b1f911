"""Protocol runs shared by the command line, the recipes and the demo: build the protocols a
command names, evaluate a model on them, and write result records (DESIGN §6)."""

from __future__ import annotations

import json
import os

import datasets
import numpy as np

from . import shapes
from .constants import PROTOCOL_NAMES, SHAPES, SHAPES_DOMAIN_PROTOCOLS, SHAPES_DOMAINS
from .evaluation import chance_levels, evaluate_protocol
from .factory import build
from .logging import get_logger
from .loaders import load_coop_split, load_xlsa17
from .modeling.modeling_base import HfZslPreTrainedModel
from .protocols import BaseToNewProtocol, EvaluationProtocol, FewShotProtocol, GZSLProtocol
from .registry import get_method



logger = get_logger(__name__)


def load_data(dataset: str) -> datasets.DatasetDict:
    """Splits of a CoOp split file, a saved ``DatasetDict`` folder, an image folder, or a Hub dataset id.

    A CoOp split file (``path/split_zhou_<Dataset>.json``) reads its images from the folder next to
    it that holds them (CoOp's layout: ``oxford_pets/split_zhou_OxfordPets.json``, ``oxford_pets/images``).
    """
    if dataset.endswith(".json") and os.path.isfile(dataset):
        return load_coop_split(dataset)
    if os.path.isdir(dataset):
        if os.path.exists(os.path.join(dataset, "dataset_dict.json")):
            return datasets.load_from_disk(dataset)
        return datasets.load_dataset("imagefolder", data_dir=dataset)
    return datasets.load_dataset(dataset)


def _task_name(dataset: str) -> str:
    """A dataset's name in result records: its folder or file name (``split_zhou_X.json`` → ``X``)."""
    name = os.path.basename(dataset.rstrip("/"))
    return name.removeprefix("split_zhou_").removesuffix(".json")


def _xlsa17_gzsl(folder: str, shots: int | None, seed: int) -> GZSLProtocol:
    """The GZSL protocol of an xlsa17 folder whose images are in (or linked as) ``folder/images``."""
    images = os.path.join(folder, "images")
    if not os.path.isdir(images):
        raise ValueError(
            f"The xlsa17 folder {folder} has no images/ subfolder: link the benchmark's images there "
            f"(e.g. ln -s /data/Animals_with_Attributes2 {images})."
        )
    return load_xlsa17(folder, image_root=images, k=shots, seed=seed)


def shapes_lighting(protocol: str, dataset: str) -> str | None:
    """The lighting of every split of a ``shapes`` (``None``: the tasks' own) or ``shapes:<domain>`` dataset.

    Raises:
        ValueError: for a domain not in :data:`~hf_zsl.constants.SHAPES_DOMAINS`, or a protocol not in
            :data:`~hf_zsl.constants.SHAPES_DOMAIN_PROTOCOLS` (the messages list the choices).
    """
    if dataset == SHAPES:
        return None
    domain = dataset.removeprefix(SHAPES + ":")
    if domain not in SHAPES_DOMAINS:
        choices = ", ".join(f"{SHAPES}:{name}" for name in SHAPES_DOMAINS)
        raise ValueError(f"Unknown shapes domain {domain!r} in {dataset!r}; choose {SHAPES} or one of {choices}.")
    if protocol not in SHAPES_DOMAIN_PROTOCOLS:
        raise ValueError(
            f"{dataset!r} exists for the {' / '.join(SHAPES_DOMAIN_PROTOCOLS)} protocols, not {protocol!r}; "
            f"choose --protocol {' or '.join(SHAPES_DOMAIN_PROTOCOLS)}, or --dataset {SHAPES}."
        )
    return SHAPES_DOMAINS[domain]


def _is_shapes(dataset: str) -> bool:
    """``dataset`` names the shapes world: ``shapes`` or ``shapes:<domain>``."""
    return dataset == SHAPES or dataset.startswith(SHAPES + ":")


def make_protocols(protocol: str, dataset: str = SHAPES, shots: int | None = 16, seed: int = 1) -> dict[str, EvaluationProtocol]:
    """The protocol objects a run evaluates, by task name.

    On the shapes world (``dataset="shapes"``) every protocol exists; ``fewshot`` is the task suite
    (one protocol per task). ``shapes:<domain>`` (:data:`~hf_zsl.constants.SHAPES_DOMAINS`, e.g.
    ``shapes:hue_shift``) is the ``gzsl`` or ``base2new`` protocol of the shapes world with every split
    under that domain's lighting (:func:`shapes_lighting`). On other data, ``fewshot`` and ``base2new``
    need only a ``ClassLabel`` column (any :func:`load_data` source); ``gzsl`` takes an xlsa17 folder (``att_splits.mat``,
    ``res101.mat`` and the images in ``images/``). Other GZSL and domain-shift data need class /
    domain lists and are built in Python (:class:`hf_zsl.protocols.GZSLProtocol`,
    :class:`hf_zsl.protocols.DomainShiftProtocol`).
    """
    if protocol not in PROTOCOL_NAMES:
        raise ValueError(f"Unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOL_NAMES)}.")
    if _is_shapes(dataset):
        lighting = shapes_lighting(protocol, dataset)
        if protocol == "fewshot":
            return shapes.fewshot_suite(shots, seed)
        if protocol == "base2new":
            return {"colour_shape": shapes.base_to_new(shots, seed, lighting=lighting)}
        if protocol == "gzsl":
            return {"gzsl": shapes.gzsl(shots, seed, lighting=lighting)}
        return {"domains": shapes.domain_shift(shots, seed)}
    if protocol == "gzsl":
        if not os.path.isfile(os.path.join(dataset, "att_splits.mat")):
            raise ValueError(
                f"The 'gzsl' protocol on {dataset!r} needs an xlsa17 folder (att_splits.mat, res101.mat, images in "
                f"images/), and {dataset} has no att_splits.mat. Build other GZSL data as hf_zsl.protocols.GZSLProtocol "
                "in Python, or use --dataset shapes."
            )
        return {_task_name(dataset): _xlsa17_gzsl(dataset, shots, seed)}
    if protocol == "dg":
        raise ValueError(
            "The 'dg' protocol needs more than a dataset name (its source and target domains): build "
            "hf_zsl.protocols.DomainShiftProtocol in Python, or use --dataset shapes."
        )
    data = load_data(dataset)
    if protocol == "fewshot":
        return {_task_name(dataset): FewShotProtocol(data, shots, seed)}
    return {_task_name(dataset): BaseToNewProtocol(data, shots, seed)}


def fit_method(
    method: str, base, protocol: EvaluationProtocol, settings: dict | None = None, preset: str | None = None
) -> tuple[HfZslPreTrainedModel, dict]:
    """A fresh ``method`` model over ``base``, fitted on ``protocol``'s training view.

    Args:
        settings: fields of the preset's settings to replace, a recipe's ``settings:`` mapping (``None``:
            the preset's). The training seed is the protocol's unless it sets ``seed``.
        preset: the method's preset (:mod:`hf_zsl.presets`); ``None``: the base's default (``embedded`` on
            the embedded bases, ``paper`` elsewhere).

    Raises:
        ValueError: for an unknown preset or settings the method does not have, before anything is built or trained.

    Returns the model and what fitting chose (0 seconds for methods that learn nothing). The preset and
    the resolved settings are in ``model.card_info`` (``"preset"``, ``"settings"``).
    """
    entry = get_method(method)
    if entry.fit is not None and protocol.kind not in entry.protocols:
        raise ValueError(
            f"{method} trains on {' / '.join(entry.protocols)} protocols, not {protocol.kind!r}; "
            f"choose --protocol {entry.protocols[0]}."
        )
    entry.check_run(base, preset, settings)
    view = protocol.training_view()
    resolved = entry.presets.resolve(method, base, view, preset, settings) if entry.fit is not None else None
    class_names = {"class_names": protocol.train_class_names} if entry.model_class.needs_class_names else {}
    model = build(method, base, preset=None if resolved is None else resolved.preset, **class_names)
    if resolved is None:
        return model, {"train_seconds": 0.0}
    model.card_info |= resolved.to_dict()
    return model, entry.fit(model, view, resolved.settings)


def summarise(
    method: str,
    protocol: str,
    per_task: dict[str, dict],
    protocols: dict[str, EvaluationProtocol],
    shots: int | None,
    seed: int,
    dataset: str,
    train_seconds: float,
) -> dict:
    """One result record: the protocol's metrics (a suite's mean, with per-task numbers) + metadata."""
    chance = {name: chance_levels(p) for name, p in protocols.items()}
    first = next(iter(per_task.values()))
    keys = [k for k, v in first.items() if isinstance(v, float)]
    record = {
        "method": method,
        "protocol": protocol,
        "dataset": dataset,
        "shots": 0 if get_method(method).fit is None else shots,
        "seed": seed,
        "train_seconds": round(train_seconds, 3),
        **{k: float(np.mean([r[k] for r in per_task.values()])) for k in keys},
        "chance": {k: float(np.mean([c[k] for c in chance.values() if k in c])) for k in keys if any(k in c for c in chance.values())},
        "protocol_details": {name: p.to_dict() for name, p in protocols.items()},
    }
    if len(per_task) > 1 or protocol == "fewshot":
        record["tasks"] = per_task
    elif "domains" in first:
        record["domains"] = first["domains"]
    return record


def run_method(
    method: str,
    protocol: str,
    protocols: dict[str, EvaluationProtocol],
    base,
    shots: int | None,
    seed: int,
    dataset: str = SHAPES,
    settings: dict | None = None,
    preset: str | None = None,
) -> tuple[dict, dict[str, HfZslPreTrainedModel]]:
    """Fit ``method`` on each task's training view, evaluate it on the task's tests, summarise.

    ``settings``, ``preset``: the method's preset and overrides of its settings (:func:`fit_method`); the
    record holds the preset's name and the first task's resolved settings (``"preset"``, ``"settings"``).

    Returns the result record and the fitted model of each task (a method that learns nothing is
    built once and shared).
    """
    models, per_task, seconds = {}, {}, 0.0
    shared = None
    for name, task in protocols.items():
        if shared is not None:
            models[name] = shared
        else:
            logger.info("task %s: fitting %s", name, method)
            models[name], info = fit_method(method, base, task, settings, preset)
            seconds += info["train_seconds"]
            models[name].card_info["fit"] = info
            if get_method(method).fit is None:
                shared = models[name]
        logger.info("task %s: evaluating", name)
        per_task[name] = evaluate_protocol(models[name], task)
    record = summarise(method, protocol, per_task, protocols, shots, seed, dataset, seconds)
    first = next(iter(models.values()))
    if "preset" in first.card_info:
        record |= {key: first.card_info[key] for key in ("preset", "settings")}
    return record, models


def write_json(records: list[dict] | dict, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(records, handle, indent=2)
