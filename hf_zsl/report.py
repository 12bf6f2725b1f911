"""Tables and charts of result records."""

from __future__ import annotations

METRICS = ("accuracy", "acc5", "mean_per_class_recall", "source_accuracy", "zsl_unseen", "seen", "unseen", "harmonic", "base", "new")


def _percent(value: float) -> str:
    return f"{100 * value:5.1f}%"


def format_table(records: list[dict]) -> str:
    """A plain-text table: one row per (method, protocol, metric) with chance, then per-task rows."""
    lines = [f"{'method':<10} {'protocol':<9} {'metric / task':<22} {'value':>7} {'chance':>7}"]
    lines.append("-" * len(lines[0]))
    for record in records:
        chance = record.get("chance", {})
        for metric in METRICS:
            if metric in record:
                lines.append(
                    f"{record['method']:<10} {record['protocol']:<9} {metric:<22} {_percent(record[metric]):>7} "
                    f"{_percent(chance[metric]) if metric in chance else '':>7}"
                )
        for task, scores in record.get("tasks", {}).items():
            lines.append(f"{'':<10} {'':<9} {'  ' + task:<22} {_percent(scores['accuracy']):>7}")
        for domain, score in record.get("domains", {}).items():
            lines.append(f"{'':<10} {'':<9} {'  ' + domain:<22} {_percent(score):>7}")
    return "\n".join(lines)


def format_index(record: dict) -> str:
    """The README.md of a suite run folder: what was run, and a link to each task's model with its scores."""
    metrics = [m for m in METRICS if m in record]
    lines = [
        f"# {record['method']} on the {record['protocol']} suite of {record['dataset']}",
        "",
        f"One model per task, each in its own folder ({record['shots']} shots, seed {record['seed']}); the records are in "
        "[eval_results.json](eval_results.json). `hf-zsl eval --model .` evaluates each task's model on its own task.",
        "",
        "| task | " + " | ".join(metrics) + " |",
        "| --- | " + " | ".join("---" for _ in metrics) + " |",
    ]
    for task, scores in record.get("tasks", {}).items():
        lines.append(f"| [{task}]({task}/) | " + " | ".join(_percent(scores[m]).strip() if m in scores else "" for m in metrics) + " |")
    lines.append("| **mean** | " + " | ".join(_percent(record[m]).strip() for m in metrics) + " |")
    return "\n".join(lines) + "\n"


def save_chart(records: list[dict], path: str) -> None:
    """Bar chart of each record's headline metrics against chance, written as PNG to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = [
        (f"{r['method']}\n{r['protocol']}:{m}", r[m], r.get("chance", {}).get(m, 0.0))
        for r in records
        for m in ("accuracy", "harmonic", "zsl_unseen")
        if m in r
    ]
    figure, axis = plt.subplots(figsize=(max(6, 1.1 * len(bars)), 4))
    positions = range(len(bars))
    axis.bar(positions, [b[1] for b in bars], color="tab:blue", label="score")
    axis.scatter(positions, [b[2] for b in bars], color="tab:red", marker="_", s=400, label="chance", zorder=3)
    axis.set_xticks(list(positions), [b[0] for b in bars], fontsize=8)
    axis.set_ylim(0, 1)
    axis.set_ylabel("fraction correct")
    axis.set_title("hf_zsl on the shapes world")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
