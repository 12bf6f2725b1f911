"""Few-shot results on the embedded shapes world: the README's results tables and the curves.

    python benchmarks/fewshot_results.py [--methods zeroshot linear_probe ...] [--seeds 1 2 3]
        [--curve-shots 1 2 4 8 16] [--json results/fewshot.json] [--update-readme]
    python benchmarks/fewshot_results.py --from-json results/fewshot.json --update-readme   # tables only

For every method: the 16-shot suite (every task of ``hf_zsl.shapes.fewshot_suite``) over the
seeds — mean ± std of the suite mean and of each task —, the domain-generalisation protocol
(train on the source background styles, test on each held-out style), and a curve of the suite
mean over 1 / 2 / 4 / 8 / 16 shots (first seed) written to PNG (``--curves``) and, beside it, JSON. Every method sees the same
support sets (the protocol objects fix the indices) and chooses its hyper-parameters on the
protocol's validation split only.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch

import hf_zsl
from hf_zsl.runs import make_protocols, run_method, write_json
from readme_tables import mean_std, update_readme

MARKERS = ("<!-- fewshot-results:start -->", "<!-- fewshot-results:end -->")


def suite_table(records: dict[str, list[dict]]) -> str:
    tasks = list(next(iter(records.values()))[0]["tasks"])
    lines = ["| method | suite mean | " + " | ".join(tasks) + " | train s / task |", "|---" * (len(tasks) + 3) + "|"]
    for method, runs in records.items():
        per_task = [mean_std([r["tasks"][t]["accuracy"] for r in runs]) for t in tasks]
        seconds = np.mean([r["train_seconds"] / len(tasks) for r in runs])
        lines.append(f"| {method} | **{mean_std([r['accuracy'] for r in runs])}** | " + " | ".join(per_task) + f" | {seconds:.1f} |")
    return "\n".join(lines)


def dg_table(records: dict[str, list[dict]]) -> str:
    first = next(iter(records.values()))[0]
    details = first["protocol_details"]["domains"]
    sources, targets = details.get("source_domains") or [], details.get("target_domains") or []
    domains = list(first["domains"])
    lines = ["| method | source (mean) | held-out (mean) | " + " | ".join(domains) + " |", "|---" * (len(domains) + 3) + "|"]
    for method, runs in records.items():
        cells = [mean_std([r["domains"][d] for r in runs]) for d in domains]
        lines.append(
            f"| {method} | {mean_std([r['source_accuracy'] for r in runs])} | **{mean_std([r['accuracy'] for r in runs])}** | "
            + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + f"\n\nSource styles: {', '.join(sources)}; held-out: {', '.join(targets)}."


def curves_text(shots: list[int], seed: int, chart: str, numbers: str) -> str:
    if not shots:
        return ""
    return (
        f"\n\n**Curves** (suite mean over {' / '.join(map(str, shots))} shots, seed {seed}): `{chart}`, numbers in `{numbers}`."
        f"\n\n![few-shot curves]({chart})"
    )


def save_curves(curves: dict[str, dict[int, float]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for method, points in curves.items():
        shots = sorted(points)
        axis.plot(shots, [100 * points[k] for k in shots], marker="o", label=method)
    axis.set_xscale("log", base=2)
    axis.set_xticks(sorted(next(iter(curves.values()))), [str(k) for k in sorted(next(iter(curves.values())))])
    axis.set_xlabel("shots per class")
    axis.set_ylabel("suite mean accuracy (%)")
    axis.set_title("Few-shot suite, embedded tiny CLIP")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=sorted(m for m, e in hf_zsl.METHODS.items() if "fewshot" in e.protocols))
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--curve-shots", type=int, nargs="*", default=[1, 2, 4, 8, 16])
    parser.add_argument("--json", default="results/fewshot.json")
    parser.add_argument("--curves", default="results/fewshot_curves.png")
    parser.add_argument("--update-readme", action="store_true")
    parser.add_argument("--curves-only", action="store_true", help="only the shots curve (first seed)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--from-json", help="rewrite the tables (and README) from a saved --json instead of running")
    args = parser.parse_args()
    os.environ.setdefault("HF_ZSL_PROGRESS", "0")
    if args.threads:
        torch.set_num_threads(args.threads)
    curves_json = os.path.splitext(args.curves)[0] + ".json"
    if args.curves_only:
        curves = {
            method: {
                shots: run_method(method, "fewshot", make_protocols("fewshot", shots=shots, seed=args.seeds[0]), args.model, shots, args.seeds[0])[0]["accuracy"]
                for shots in args.curve_shots
            }
            for method in args.methods
        }
        write_json({"curves": curves}, curves_json)
        save_curves(curves, args.curves)
        print(curves)
        return

    if args.from_json:
        with open(args.from_json) as handle:
            saved = json.load(handle)
        suite, dg, curves = saved["fewshot"], saved["dg"], saved["curves"]
    else:
        suite, dg, curves = run_all(args)
    first = next(iter(suite.values()))
    shots, seeds = first[0]["shots"], [record["seed"] for record in first]
    curve_shots = sorted(int(k) for k in next(iter(curves.values()))) if curves else []
    tables = (
        f"**Few-shot suite, {shots} shots, seeds {', '.join(map(str, seeds))}** (accuracy %, mean ± std over seeds; "
        "`train s / task` is the mean wall time of `fit` per task, cached features)\n\n"
        + suite_table(suite)
        + f"\n\n**Domain generalisation** ({shots} shots on the source styles, unchanged on held-out styles)\n\n"
        + dg_table(dg)
        + curves_text(curve_shots, seeds[0], args.curves, curves_json)
    )
    print(tables)
    if not args.from_json:
        write_json({"fewshot": suite, "dg": dg, "curves": curves}, args.json)
        if curves:
            write_json({"curves": curves}, curves_json)
            save_curves(curves, args.curves)
    if args.update_readme:
        update_readme(tables, MARKERS)


def run_all(args) -> tuple[dict, dict, dict]:
    """Every method's suite and domain-generalisation records over the seeds, and its shots curve."""
    suite, dg, curves = {}, {}, {}
    for method in args.methods:
        for seed in args.seeds:
            print(f"[{method}] seed {seed}: fewshot + dg", flush=True)
            suite.setdefault(method, []).append(
                run_method(method, "fewshot", make_protocols("fewshot", shots=args.shots, seed=seed), args.model, args.shots, seed)[0]
            )
            dg.setdefault(method, []).append(
                run_method(method, "dg", make_protocols("dg", shots=args.shots, seed=seed), args.model, args.shots, seed)[0]
            )
        for shots in args.curve_shots:
            if shots == args.shots:
                curves.setdefault(method, {})[shots] = suite[method][0]["accuracy"]
                continue
            print(f"[{method}] curve: {shots} shots", flush=True)
            record = run_method(method, "fewshot", make_protocols("fewshot", shots=shots, seed=args.seeds[0]), args.model, shots, args.seeds[0])[0]
            curves.setdefault(method, {})[shots] = record["accuracy"]
    return suite, dg, curves

if __name__ == "__main__":
    main()
