"""What the ``hf-zsl`` commands do (the parsing lives in :mod:`hf_zsl.cli`)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from transformers import AutoModelForZeroShotImageClassification

from .cache import cache_root
from .evaluation import evaluate_protocol
from .factory import build, folder_model_type, is_hf_zsl_type
from .registry import METHODS, get_method
from .modeling.modeling_base import EMBEDDED_BASE, EMBEDDED_FOLDERS, HfZslPreTrainedModel
from .report import format_table, save_chart
from .rundir import RUN_BYTES_PER_TASK, RunFolder
from .runs import PROTOCOL_NAMES, SHAPES, make_protocols, run_method, summarise, write_json
from .training import distributed_state

# By default the demo runs zero-shot CLIP on every protocol (it fits the 3-minute budget on 2 CPU
# cores); trained methods chosen with --methods run on the few-shot suite with 4 shots, seed 1
# (about a minute each there). The README's results table has them all at 16 shots × 3 seeds.
DEMO_DEFAULT_METHODS = ("zeroshot",)
DEMO_TRAINED_PROTOCOLS = ("fewshot",)
DEMO_SHOTS = 4
CARD_METRICS = ("accuracy", "seen", "unseen", "harmonic", "zsl_unseen", "base", "new")


def load_model(name_or_path: str) -> HfZslPreTrainedModel:
    """A saved hf_zsl model, or zero-shot over a base encoder (folder, Hub id, ``"embedded"``, ``"embedded-siglip"``)."""
    if os.path.isdir(name_or_path) and is_hf_zsl_type(folder_model_type(name_or_path)):
        return AutoModelForZeroShotImageClassification.from_pretrained(name_or_path).eval()
    if name_or_path in EMBEDDED_FOLDERS or os.path.isdir(name_or_path):
        return build("zeroshot", name_or_path)
    model = AutoModelForZeroShotImageClassification.from_pretrained(name_or_path)
    if not isinstance(model, HfZslPreTrainedModel):
        return build("zeroshot", name_or_path)
    return model.eval()


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
) -> dict:
    """Fit ``method`` on each task of the protocol, evaluate, and save.

    Writes each task's model (weights, config, tokenizer, processor, code, card) to ``output_dir``
    (``output_dir/<task>`` when the protocol has several tasks) and the result record to
    ``output_dir/eval_results.json``; returns the record. Under ``accelerate launch`` every process
    trains (gradients synchronised) and only the main process writes. ``settings``: overrides of the
    method's default settings, as in a recipe (:func:`~hf_zsl.runs.fit_method`). ``write_extra(record,
    folder)`` may add files to the run before it is published (the recipe's ``run.json``).

    The run is exclusive and atomic (:class:`~hf_zsl.rundir.RunFolder`): it locks ``output_dir`` (a second
    run into it fails at once), checks the parent folder's writability and free space before training,
    writes into a temporary sibling and moves it into place only when everything is written. An
    ``output_dir`` holding files is refused before training (:func:`check_output_dir`); with ``overwrite``
    the earlier run is swapped out only once the new one is complete. A failed or killed run leaves the
    earlier run as it was.
    """
    check_output_dir(output_dir, overwrite, keep=(base, dataset))
    writer = distributed_state().is_main_process
    with RunFolder(output_dir) if writer else contextlib.nullcontext() as folder:
        if writer:
            check_output_dir(output_dir, overwrite, keep=(base, dataset))  # again, now that no other run can write
        protocols = make_protocols(protocol, dataset, shots, seed)
        if writer:
            folder.stage(RUN_BYTES_PER_TASK * len(protocols))
        record, models = run_method(method, protocol, protocols, base, shots, seed, dataset, settings)
        if not writer:
            return record
        with folder.writing() as staging:
            _save_run(record, models, staging, protocol, seed, dataset)
            if write_extra is not None:
                write_extra(record, staging)
        folder.publish()
    print(format_table([record]))
    return record


def _save_run(record: dict, models: dict, folder: str, protocol: str, seed: int, dataset: str) -> None:
    """Write each task's model (with its card) and ``eval_results.json`` into ``folder``."""
    for task, model in models.items():
        model.card_info |= {
            "protocol": {"kind": protocol, "k": record["shots"], "seed": seed, "dataset": dataset, "task": task},
            "results": [{"dataset": dataset, "protocol": protocol, "shots": record["shots"], **_scores(record, task)}],
        }
        model.save_pretrained(folder if len(models) == 1 else os.path.join(folder, task))
    write_json(record, os.path.join(folder, "eval_results.json"))


def _scores(record: dict, task: str) -> dict:
    """The headline metrics of one task of ``record`` (the record itself for single-task protocols)."""
    scores = record.get("tasks", {}).get(task, record)
    return {k: scores[k] for k in CARD_METRICS if k in scores}


def evaluate(model_path: str, protocol: str, shots: int, seed: int, dataset: str, json_path: str | None) -> dict:
    """Evaluate a saved model (or zero-shot CLIP over a base) on a protocol; print and optionally save."""
    model = load_model(model_path)
    protocols = make_protocols(protocol, dataset, shots, seed)
    per_task = {name: evaluate_protocol(model, task) for name, task in protocols.items()}
    record = summarise(model.config.method, protocol, per_task, protocols, shots, seed, dataset, 0.0)
    print(format_table([record]))
    if json_path:
        write_json(record, json_path)
    return record


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
