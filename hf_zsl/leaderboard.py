"""``hf-zsl table``: result records as a Markdown or CSV leaderboard (standard library only)."""

from __future__ import annotations

import csv
import json
import sys

from .report import METRICS

COLUMNS = ("model", "method", "protocol", "dataset", "shots", "seed")


def read_records(paths: list[str]) -> list[dict]:
    """Every result record in ``paths`` (each file holds one record or a list of them).

    Raises:
        ValueError: naming the file, when it holds something else.
    """
    records = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            try:
                content = json.load(handle)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path} is not JSON ({error}); give eval_results.json or 'hf-zsl eval --json' files.") from None
        found = content if isinstance(content, list) else [content]
        if not all(isinstance(r, dict) and "method" in r and "protocol" in r for r in found):
            raise ValueError(f"{path} holds no result records (objects with 'method' and 'protocol'); give eval_results.json "
                             "or 'hf-zsl eval --json' files.")
        records += found
    return records


def leaderboard(records: list[dict]) -> tuple[list[str], list[list[str]]]:
    """The header and rows: the run's columns, then every metric some record has (percentages, one decimal)."""
    metrics = [m for m in METRICS if any(m in r for r in records)]
    header = [*COLUMNS, *metrics]
    rows = []
    for record in records:
        described = [str(record.get(c, record["method"] if c == "model" else "")) for c in COLUMNS]
        rows.append(described + [f"{100 * record[m]:.1f}" if m in record else "" for m in metrics])
    return header, rows


def print_table(paths: list[str], csv_format: bool = False) -> None:
    """Print the leaderboard of the records in ``paths``: Markdown, or CSV when ``csv_format``."""
    header, rows = leaderboard(read_records(paths))
    if csv_format:
        writer = csv.writer(sys.stdout)
        writer.writerows([header, *rows])
        return
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(" --- " if i < len(COLUMNS) else " ---: " for i in range(len(header))) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
