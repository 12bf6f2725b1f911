"""What the ``hf-zsl`` commands do (the parsing lives in :mod:`hf_zsl.cli`)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from .cache import cache_root
from .constants import (
    DEMO_DEFAULT_METHODS,
    DEMO_SHOTS,
    DEMO_TRAINED_PROTOCOLS,
    EMBEDDED_BASE,
    FROM_RUN,
    PROTOCOL_NAMES,
    SHAPES,
    protocol_shots,
)
from .evaluation import evaluate_protocol
from .factory import folder_model_type, is_hf_zsl_type
from .loading import RUN_FILE, load, read_run, run_info, task_folders
from .logging import get_logger
from .registry import METHODS, get_method
from .report import format_index, format_table, save_chart
from .rundir import RUN_BYTES_PER_TASK, RunFolder
from .runs import make_protocols, run_method, summarise, write_json
from .training import distributed_state

logger = get_logger(__name__)
CARD_METRICS = ("accuracy", "seen", "unseen", "harmonic", "zsl_unseen", "base", "new")


def check_output_dir(output_dir: str, overwrite: bool = False, keep: tuple[str, ...] = ()) -> None:
    """Refuse, before anything trains, an ``output_dir`` that :func:`train` could not safely write.

    Refused: a file; a folder holding files, unless ``overwrite`` (:func:`train` then swaps it out once
    the new run is complete). With ``overwrite``, the folder must hold an earlier hf_zsl run (an
    ``eval_results.json`` or an hf_zsl model's ``config.json``) and must not contain the working
    directory, the hf_zsl cache or any path of ``keep`` (the base and the dataset when they are local):
    replacing it would delete them.
    """
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ValueError(f"--output-dir {output_dir} is a file; choose a folder path.")
    if not os.path.isdir(output_dir) or not os.listdir(output_dir):
        return
    if not overwrite:
        raise ValueError(
            f"--output-dir {output_dir} already holds files; choose a new folder, or pass --overwrite to replace "
            "it once training succeeds."
        )
    if not (os.path.isfile(os.path.join(output_dir, "eval_results.json")) or is_hf_zsl_type(folder_model_type(output_dir))):
        raise ValueError(
            f"--output-dir {output_dir} holds files but no earlier hf_zsl run (no eval_results.json or hf_zsl "
            "config.json); --overwrite replaces only such a folder. Choose a new folder."
        )
    folder = os.path.realpath(output_dir)
    for path in (os.getcwd(), cache_root(), *keep):
        inside = os.path.exists(path) and os.path.commonpath([folder, os.path.realpath(path)]) == folder
        if inside:
            raise ValueError(
                f"--output-dir {output_dir} contains {path}, which --overwrite would delete; choose another folder."
            )


def train(
    method: str,
    protocol: str,
    shots: int,
    seed: int,
    base: str,
    dataset: str,
    output_dir: str,
    settings: dict | None = None,
    overwrite: bool = False,
    write_extra: Callable[[dict, str], None] | None = None,
    preset: str | None = None,
) -> dict:
    """Fit ``method`` on each task of the protocol, evaluate, and save.

    Writes each task's model (weights, config, tokenizer, processor, code, card) to ``output_dir``
    (``output_dir/<task>`` when the protocol has several tasks) and the result record to
    ``output_dir/eval_results.json``; returns the record. Under ``accelerate launch`` every process
    trains (gradients synchronised) and only the main process writes. ``settings``: overrides of the
    method's preset settings and ``preset`` its preset (``None``: the base's default), as in a recipe
    (:func:`~hf_zsl.runs.fit_method`); both are checked before anything is computed. ``write_extra(record,
    folder)`` may add files to the run before it is published (the recipe's ``run.json``).

    The run is exclusive and atomic (:class:`~hf_zsl.rundir.RunFolder`): it locks ``output_dir`` (a second
    run into it fails at once), checks the parent folder's writability and free space before training,
    writes into a temporary sibling and moves it into place only when everything is written. An
    ``output_dir`` holding files is refused before training (:func:`check_output_dir`); with ``overwrite``
    the earlier run is swapped out only once the new one is complete. A failed or killed run leaves the
    earlier run as it was.
    """
    check_output_dir(output_dir, overwrite, keep=(base, dataset))
    get_method(method).check_run(base, preset, settings)
    writer = distributed_state().is_main_process
    with RunFolder(output_dir) if writer else contextlib.nullcontext() as folder:
        if writer:
            check_output_dir(output_dir, overwrite, keep=(base, dataset))  # again, now that no other run can write
        protocols = make_protocols(protocol, dataset, shots, seed)
        if writer:
            folder.stage(RUN_BYTES_PER_TASK * len(protocols))
        record, models = run_method(method, protocol, protocols, base, shots, seed, dataset, settings, preset)
        if not writer:
            return record
        with folder.writing() as staging:
            _save_run(record, models, staging, method, protocol, shots, seed, dataset, base)
            if write_extra is not None:
                write_extra(record, staging)
        folder.publish()
    print(format_table([record]))
    return record


def _save_run(
    record: dict, models: dict, folder: str, method: str, protocol: str, shots, seed: int, dataset: str, base: str
) -> None:
    """Write each task's model (with its card and ``run.json``) and ``eval_results.json`` into ``folder``; a
    suite run also gets a ``run.json`` and a ``README.md`` index of its task folders."""
    for task, model in models.items():
        model.card_info |= {
            "protocol": {"kind": protocol, "k": record["shots"], "seed": seed, "dataset": dataset, "task": task},
            "results": [{"dataset": dataset, "protocol": protocol, "shots": record["shots"], **_scores(record, task)}],
        }
        task_folder = folder if len(models) == 1 else os.path.join(folder, task)
        model.save_pretrained(task_folder)
        write_json(run_info(method, protocol, shots, seed, dataset, base, [task]), os.path.join(task_folder, RUN_FILE))
    if len(models) > 1:
        write_json(run_info(method, protocol, shots, seed, dataset, base, list(models)), os.path.join(folder, RUN_FILE))
        with open(os.path.join(folder, "README.md"), "w") as handle:
            handle.write(format_index(record))
    write_json(record, os.path.join(folder, "eval_results.json"))


def _scores(record: dict, task: str) -> dict:
    """The headline metrics of one task of ``record`` (the record itself for single-task protocols)."""
    scores = record.get("tasks", {}).get(task, record)
    return {k: scores[k] for k in CARD_METRICS if k in scores}


def evaluate(
    model_path: str, protocol: str | None = None, shots=FROM_RUN, seed: int | None = None, dataset: str | None = None
) -> dict:
    """The result record of a model (a saved model, a run folder of ``train``, or zero-shot CLIP over a base) on a
    protocol.

    A folder written by ``train`` records its run (``run.json``); what is not given here is taken from it
    (``shots``: :data:`~hf_zsl.constants.FROM_RUN`), else defaults to the protocol's shots
    (:func:`~hf_zsl.constants.protocol_shots`; ``shots=None`` means that too, ``"all"`` every image), seed 1,
    the shapes world. A
    suite run folder is evaluated task by task, each task's model on its own task; one task's model folder
    on its own task only.

    Raises:
        ValueError: when no protocol is given and none is recorded.
    """
    run = read_run(model_path) if os.path.isdir(model_path) else None
    recorded = run or {}
    protocol = protocol or recorded.get("protocol")
    if protocol is None:
        raise ValueError(
            f"{model_path} records no training run ({RUN_FILE}); pass --protocol ({', '.join(PROTOCOL_NAMES)})."
        )
    if shots == FROM_RUN:
        shots = recorded["shots"] if "shots" in recorded else protocol_shots(protocol, None)
    else:
        shots = protocol_shots(protocol, shots)
    seed = recorded.get("seed", 1) if seed is None else seed
    dataset = dataset or recorded.get("dataset", SHAPES)
    protocols = make_protocols(protocol, dataset, shots, seed)
    models = _task_models(model_path, protocols, run)
    protocols = {task: protocols[task] for task in models}
    per_task = {}
    for task, model in models.items():
        logger.info("task %s: evaluating", task)
        per_task[task] = evaluate_protocol(model, protocols[task])
    method = next(iter(models.values())).config.method
    record = summarise(method, protocol, per_task, protocols, shots, seed, dataset, 0.0)
    return {"model": model_path, **record}


def _task_models(model_path: str, protocols: dict, run: dict | None) -> dict:
    """The model to evaluate on each task: a suite run's per-task models (every task of ``protocols`` must
    have one), a one-task model on its own task when ``protocols`` is its suite, else one model on every task."""
    folders = task_folders(model_path)
    if folders:
        missing = sorted(set(protocols) - set(folders))
        if missing:
            raise ValueError(
                f"{model_path} holds models for tasks {', '.join(folders)} but the protocol has tasks {', '.join(protocols)}; "
                f"no model for {', '.join(missing)}. Evaluate a task's folder alone, or the protocol it was trained on."
            )
        return {task: load(folders[task]) for task in protocols}
    model = load(model_path)
    own = (run or {}).get("tasks", [])
    if len(own) == 1 and own[0] in protocols and len(protocols) > 1:
        return {own[0]: model}
    return dict.fromkeys(protocols, model)


def evaluate_models(
    models: list[str],
    protocol: str | None = None,
    shots=FROM_RUN,
    seed: int | None = None,
    datasets: list[str] | None = None,
    json_path: str | None = None,
) -> list[dict]:
    """``hf-zsl eval``: one record per (model, dataset) (:func:`evaluate`); prints a table, and writes the
    records to ``json_path`` (one record as an object, several as a list)."""
    records = [evaluate(model, protocol, shots, seed, dataset) for model in models for dataset in datasets or [None]]
    print(format_table(records))
    if json_path:
        write_json(records[0] if len(records) == 1 else records, json_path)
    return records


def demo(
    base: str = EMBEDDED_BASE,
    json_path: str | None = None,
    chart_path: str | None = None,
    methods: list[str] | None = None,
) -> list[dict]:
    """Zero-shot CLIP on every protocol of the shapes world and every trained method on its few-shot
    suite, offline: prints a table with chance levels, writes the records (JSON) and a chart (PNG).

    Args:
        methods: the methods to run (default: zero-shot CLIP; ``["all"]`` for every registered method).
    """
    records = []
    if methods == ["all"]:
        methods = list(METHODS)
    for method in methods or DEMO_DEFAULT_METHODS:
        entry = get_method(method)
        shots = 16 if entry.fit is None else DEMO_SHOTS
        protocols = PROTOCOL_NAMES if entry.fit is None else [p for p in DEMO_TRAINED_PROTOCOLS if p in entry.protocols]
        if not protocols:
            print(f"[{method}] skipped: it trains on {' / '.join(entry.protocols)}, not the demo's few-shot suite "
                  "(see benchmarks/zsl_results.py)", flush=True)
        for protocol in protocols:
            print(f"[{method}] {protocol}, {shots} shots ...", flush=True)
            records.append(run_method(method, protocol, make_protocols(protocol, SHAPES, shots, 1), base, shots, 1)[0])
    print(format_table(records))
    if json_path:
        write_json(records, json_path)
        print(f"results: {json_path}")
    if chart_path:
        save_chart(records, chart_path)
        print(f"chart: {chart_path}")
    return records
