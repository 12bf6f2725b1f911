"""What the ``hf-zsl`` commands do (the parsing lives in :mod:`hf_zsl.cli`)."""

from __future__ import annotations

import json
import os

from transformers import AutoModelForZeroShotImageClassification

from .factory import build
from .modeling.modeling_base import EMBEDDED_BASE, HfZslPreTrainedModel
from .report import format_table, save_chart
from .runs import PROTOCOL_NAMES, SHAPES, Timer, evaluate_run, make_protocols, write_json

DEMO_METHODS = ("zeroshot",)
CARD_KEYS = ("dataset", "protocol", "shots", "accuracy", "seen", "unseen", "harmonic", "zsl_unseen", "base", "new")


def load_model(name_or_path: str) -> HfZslPreTrainedModel:
    """A saved hf_zsl model, or zero-shot CLIP over a base encoder (folder, Hub id, ``"embedded"``)."""
    config_path = os.path.join(name_or_path, "config.json")
    if os.path.isfile(config_path):
        with open(config_path) as handle:
            is_hf_zsl = json.load(handle).get("model_type", "").startswith("hfzsl_")
        if is_hf_zsl:
            return AutoModelForZeroShotImageClassification.from_pretrained(name_or_path).eval()
    if name_or_path == EMBEDDED_BASE or os.path.isdir(name_or_path):
        return build("zeroshot", name_or_path)
    model = AutoModelForZeroShotImageClassification.from_pretrained(name_or_path)
    if not isinstance(model, HfZslPreTrainedModel):
        return build("zeroshot", name_or_path)
    return model.eval()


def train(method: str, protocol: str, shots: int, seed: int, base: str, dataset: str, output_dir: str) -> dict:
    """Build ``method`` over ``base``, fit it on the protocol's training view, evaluate, save.

    Writes the model (weights, config, tokenizer, processor, code, card) and
    ``eval_results.json`` to ``output_dir``; returns the result record.
    """
    protocols = make_protocols(protocol, dataset, shots, seed)
    with Timer() as timer:
        model = build(method, base)  # zero-shot CLIP learns nothing: building is its training
    record = evaluate_run(model, protocol, protocols, method, shots, seed, dataset, timer.seconds)
    model.card_info = {
        "protocol": {"kind": protocol, "k": record["shots"], "seed": seed, "dataset": dataset},
        "results": [{k: record[k] for k in CARD_KEYS if k in record}],
    }
    model.save_pretrained(output_dir)
    write_json(record, os.path.join(output_dir, "eval_results.json"))
    print(format_table([record]))
    return record


def evaluate(model_path: str, protocol: str, shots: int, seed: int, dataset: str, json_path: str | None) -> dict:
    """Evaluate a saved model (or zero-shot CLIP over a base) on a protocol; print and optionally save."""
    model = load_model(model_path)
    record = evaluate_run(model, protocol, make_protocols(protocol, dataset, shots, seed), model.config.method, shots, seed, dataset)
    print(format_table([record]))
    if json_path:
        write_json(record, json_path)
    return record


def demo(base: str = EMBEDDED_BASE, json_path: str | None = None, chart_path: str | None = None) -> list[dict]:
    """Every available method on every protocol of the shapes world, offline: table, JSON, chart."""
    records = []
    for method in DEMO_METHODS:
        model = build(method, base)
        for protocol in PROTOCOL_NAMES:
            print(f"[{method}] {protocol} ...", flush=True)
            records.append(evaluate_run(model, protocol, make_protocols(protocol, SHAPES, 16, 1), method, 16, 1))
    print(format_table(records))
    if json_path:
        write_json(records, json_path)
        print(f"results: {json_path}")
    if chart_path:
        save_chart(records, chart_path)
        print(f"chart: {chart_path}")
    return records
