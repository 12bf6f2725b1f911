"""Zero-shot-learning results on the embedded shapes world: the README's GZSL and base-to-new tables.

    python benchmarks/zsl_results.py [--gzsl-methods zeroshot cfzsl dfzsl] [--b2n-methods zeroshot dfzsl coop]
        [--shifted-tasks warm_light hue_shift] [--seeds 1 2 3] [--json results/zsl.json] [--update-readme]
        [--threads N]
    python benchmarks/zsl_results.py --merge a.json b.json --update-readme   # runs made in parallel

* GZSL (``hf_zsl.shapes.gzsl``): 80 colour × shape classes, 16 of them unseen (never in
  pretraining either); every seen-class training image; T1 (per-class accuracy on unseen images
  among unseen classes), S / U (per-class accuracy on seen / unseen images among all classes), H.
* Base-to-new (``hf_zsl.shapes.base_to_new``): the 56 colour_shape classes, base = the first half
  in label-id order (CoCoOp's rule); base (among base) and new (among new) accuracy, sample-averaged, and HM.
  CoOp, which learns its prompt from the real base images, is run beside DFZSL for reference.
* Base-to-new under a colour shift: the same split of the ``warm_light`` and ``hue_shift`` few-shot
  tasks (lighting never seen in pretraining), every base training image; there the base-class
  server knows what zero-shot CLIP does not, which is what DFZSL transfers to the new classes.

Every method sees the same protocol objects; the seed seeds each method's training (the data and
the splits are the same for every seed). Hyper-parameters and epochs are chosen on validation data
(CFZSL: a split of the seen classes; DFZSL: held-out virtual features), never on test.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch
from readme_tables import mean_std, update_readme

from hf_zsl.protocols import BaseToNewProtocol
from hf_zsl.runs import make_protocols, run_method, write_json
from hf_zsl.shapes.suite import task_data

MARKERS = ("<!-- zsl-results:start -->", "<!-- zsl-results:end -->")
GZSL_COLUMNS = (("T1", "zsl_unseen"), ("S", "seen"), ("U", "unseen"), ("H", "harmonic"))
B2N_COLUMNS = (("base", "base"), ("new", "new"), ("HM", "harmonic"))


def table(records: dict[str, list[dict]], columns: tuple[tuple[str, str], ...], bold: str) -> str:
    """Markdown rows ``method | metric… | train s`` with mean ± std over the seeds."""
    lines = ["| method | " + " | ".join(title for title, _ in columns) + " | train s |", "|---" * (len(columns) + 2) + "|"]
    for method, runs in records.items():
        cells = []
        for title, key in columns:
            cell = mean_std([r[key] for r in runs])
            cells.append(f"**{cell}**" if title == bold else cell)
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {np.mean([r['train_seconds'] for r in runs]):.0f} |")
    return "\n".join(lines)


def shifted_base_to_new(tasks: list[str], seed: int) -> dict[str, BaseToNewProtocol]:
    """Base-to-new over each named few-shot task's classes and images, every base training image."""
    return {task: BaseToNewProtocol(task_data(task), None, seed) for task in tasks}


def run(protocol: str, methods: list[str], seeds: list[int], model: str, tasks: list[str] | None = None) -> dict[str, list[dict]]:
    """Every method × seed on the protocol (``tasks``: the shifted base-to-new tasks instead of the default)."""
    records: dict[str, list[dict]] = {}
    for method in methods:
        for seed in seeds:
            print(f"[{protocol}{' ' + ', '.join(tasks) if tasks else ''}] {method}, seed {seed}", flush=True)
            protocols = shifted_base_to_new(tasks, seed) if tasks else make_protocols(protocol, shots=None, seed=seed)
            record = run_method(method, protocol, protocols, model, None, seed)[0]
            print({k: round(v, 4) for k, v in record.items() if isinstance(v, float)}, flush=True)
            records.setdefault(method, []).append(record)
    return records


def render(results: dict, seeds: list[int]) -> str:
    """The README tables of a results record (``gzsl``, ``base2new``, ``base2new_shifted``)."""
    seeds_text = ", ".join(map(str, seeds))
    shifted = results.get("base2new_shifted") or {}
    tasks = list(next(iter(shifted.values()))[0]["tasks"]) if shifted else []
    text = (
        f"**GZSL** (80 classes, 16 unseen; seeds {seeds_text}; %, mean ± std over seeds)\n\n"
        + table(results["gzsl"], GZSL_COLUMNS, bold="H")
        + f"\n\n**Base-to-new** (28 base / 28 new classes; seeds {seeds_text})\n\n"
        + table(results["base2new"], B2N_COLUMNS, bold="HM")
    )
    for task in tasks:
        per_task = {m: [r["tasks"][task] | {"train_seconds": r["train_seconds"] / len(tasks)} for r in runs] for m, runs in shifted.items()}
        text += (
            f"\n\n**Base-to-new under {task.replace('_', ' ')}** (colour × shape; this colour shift of the images "
            "never occurs in pretraining)\n\n" + table(per_task, B2N_COLUMNS, bold="HM")
        )
    return text + (
        "\n\n`train s`: seconds to fit one model on the shared CPU (one torch thread; DFZSL: the server + its four "
        "data-free stages; CFZSL: the calibration model and the final model, each training its CNN on pixels)."
    )


def merge(paths: list[str]) -> dict:
    """One results record from several runs' JSON files (methods of each protocol side by side)."""
    merged: dict[str, dict] = {}
    for path in paths:
        with open(path) as handle:
            for protocol, records in json.load(handle).items():
                merged.setdefault(protocol, {}).update(records)
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gzsl-methods", nargs="*", default=["zeroshot", "cfzsl", "dfzsl"])
    parser.add_argument("--b2n-methods", nargs="*", default=["zeroshot", "dfzsl", "coop"])
    parser.add_argument("--shifted-tasks", nargs="*", default=["warm_light", "hue_shift"])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--json", default="results/zsl.json")
    parser.add_argument("--merge", nargs="+", metavar="JSON", help="only render (and write --json) from these runs' files")
    parser.add_argument("--update-readme", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    os.environ.setdefault("HF_ZSL_PROGRESS", "0")
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.merge:
        results = merge(args.merge)
    else:
        results = {
            "gzsl": run("gzsl", args.gzsl_methods, args.seeds, args.model),
            "base2new": run("base2new", args.b2n_methods, args.seeds, args.model),
            "base2new_shifted": run("base2new", args.b2n_methods, args.seeds, args.model, args.shifted_tasks)
            if args.shifted_tasks
            else {},
        }
    tables = render(results, args.seeds)
    print(tables)
    write_json(results, args.json)
    if args.update_readme:
        update_readme(tables, MARKERS)


if __name__ == "__main__":
    main()
