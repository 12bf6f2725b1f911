"""Model cards: ``model_cards/<method>.md`` rendered into a ``huggingface_hub.ModelCard`` with ``model-index``.

Every method's template extends ``model_cards/base.md`` (jinja ``{% extends %}``) and fills five blocks:
``title``, ``description``, ``learned``, ``choices`` and ``open_vocabulary``. The shared template lays out the
method, prompt templates, open-vocabulary behaviour, protocol, hyper-parameters, results and usage;
the YAML metadata comes from :class:`huggingface_hub.ModelCardData`.

``info`` (what :func:`render_model_card` takes) is a dict with keys

* ``method`` (``"zeroshot"``), ``model_type`` (``"hfzsl_zeroshot"``), ``base_model`` (a Hub id, a folder or
  ``"embedded"``) — required;
* ``templates`` (``list[str]`` or ``None``), ``hyperparameters`` (dict), ``protocol`` (dict such as
  ``{"kind": "fewshot", "k": 16, "seed": 1, "val_policy": "..."}`` or ``None``), ``results`` (list of dicts
  such as ``{"dataset": "shapes", "protocol": "fewshot", "accuracy": 0.71}``) — optional;
* ``preset`` (``"paper"`` / ``"embedded"``) and ``settings`` (the resolved settings, a dict) — optional, what
  training ran with; a method's template may fill a ``paper`` block saying where its ``paper`` preset
  departs from the official code;
* ``model_name`` and ``repo_id`` — optional, used in the title and the usage snippet.
"""

from __future__ import annotations

import dataclasses
import os
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .modeling.configuration_base import HfZslConfig

TASK = "zero-shot-image-classification"
# Metric keys of eval_results.json (DESIGN §6) with their model-index names; other keys are not metrics.
METRIC_NAMES = {
    "accuracy": "accuracy",
    "seen": "GZSL seen accuracy (per-class mean)",
    "unseen": "GZSL unseen accuracy (per-class mean)",
    "harmonic": "harmonic mean",
    "zsl_unseen": "ZSL unseen accuracy (per-class mean)",
    "base": "base-class accuracy",
    "new": "new-class accuracy",
}
PROTOCOL_TEXT = {
    "zeroshot": "Zero-shot: no labelled image was used; the test split is scored directly.",
    "fewshot": "Few-shot: k labelled images per class, drawn by a seeded sampler that gives every method the "
    "same indices.",
    "base2new": "Base-to-new: trained on the base classes (the first half of the classes in label-id order, as CoCoOp) and "
    "evaluated separately on base and on new classes.",
    "gzsl": "Generalized zero-shot: trained on seen classes; test images of seen and unseen classes are "
    "classified over both label sets.",
    "dg": "Domain generalisation: trained on a source domain and evaluated on shifted target domains.",
}
_REQUIRED = ("method", "model_type", "base_model")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _template_source(name: str) -> str:
    """Text of ``model_cards/<name>``, read from the installed package."""
    resource = files("hf_zsl.model_cards").joinpath(name)
    if not resource.is_file():
        raise jinja2.TemplateNotFound(name)
    return resource.read_text(encoding="utf-8")


_ENV = jinja2.Environment(
    loader=jinja2.FunctionLoader(_template_source),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    autoescape=False,
)


def available_methods() -> list[str]:
    """Methods with a card template (``model_cards/<method>.md``, ``base.md`` excluded)."""
    names = (p.name for p in files("hf_zsl.model_cards").iterdir())
    return sorted(n[:-3] for n in names if n.endswith(".md") and n != "base.md")


def _check(info: dict[str, Any]) -> None:
    """Raise a ``ValueError`` naming what is missing or malformed in ``info``."""
    missing = [key for key in _REQUIRED if not info.get(key)]
    if missing:
        raise ValueError(f"model card info lacks {missing}; required keys are {list(_REQUIRED)}.")
    if info["method"] not in available_methods():
        raise ValueError(f"no model card template for method {info['method']!r}; have {available_methods()}.")
    for i, row in enumerate(info.get("results") or []):
        if not row.get("dataset") or not row.get("protocol"):
            raise ValueError(f"results[{i}] needs 'dataset' and 'protocol' keys, got {sorted(row)}.")
        for key in METRIC_NAMES.keys() & row.keys():
            value = row[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"results[{i}][{key!r}] = {value!r} is not a fraction in [0, 1].")


def _protocol_label(row: dict[str, Any]) -> str:
    """The protocol of a result row with its shots, e.g. ``"fewshot, 16 shots"``."""
    return f"{row['protocol']}, {row['shots']} shots" if row.get("shots") else str(row["protocol"])


def _dataset_name(row: dict[str, Any]) -> str:
    """Pretty dataset name of a result row, e.g. ``"shapes (fewshot, 16 shots)"``."""
    return f"{row['dataset']} ({_protocol_label(row)})"


def eval_results(results: list[dict[str, Any]]) -> list[EvalResult]:
    """One ``EvalResult`` per metric of each result row (keys of :data:`METRIC_NAMES`; values are fractions)."""
    return [
        EvalResult(
            task_type=TASK,
            dataset_type=row["dataset"],
            dataset_name=_dataset_name(row),
            dataset_config=row["protocol"],
            dataset_split=row.get("split", "test"),
            metric_type=key,
            metric_name=name,
            metric_value=float(row[key]),
        )
        for row in results
        for key, name in METRIC_NAMES.items()
        if key in row
    ]


def _model_name(info: dict[str, Any]) -> str:
    return info.get("model_name") or f"hf_zsl {info['method']} ({info['base_model']})"


def model_card_data(info: dict[str, Any]) -> ModelCardData:
    """The card's YAML metadata.

    ``base_model`` goes into the metadata only when it is a Hub id (``owner/name``); a local folder or
    ``"embedded"`` means nothing on the Hub and is named in the card's text only.
    """
    _check(info)
    base = info["base_model"]
    is_hub_id = bool(_HUB_ID.match(base)) and not os.path.exists(base)
    results = eval_results(info.get("results") or [])
    return ModelCardData(
        model_name=_model_name(info) if results else None,  # only model-index uses it
        base_model=base if is_hub_id else None,
        library_name="transformers",
        pipeline_tag=TASK,
        tags=["hf_zsl", info["method"]],
        eval_results=results or None,
    )


def _results_table(results: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the results table: dataset, protocol, then each metric present, in percent."""
    columns = [key for key in METRIC_NAMES if any(key in row for row in results)]
    rows = [
        [str(row["dataset"]), _protocol_label(row)]
        + [f"{100 * row[key]:.1f}" if key in row else "" for key in columns]
        for row in results
    ]
    return ["dataset", "protocol", *columns], rows


def render_model_card(info: dict[str, Any]) -> ModelCard:
    """Render the card of ``info`` (see the module docstring) from ``model_cards/<method>.md``."""
    data = model_card_data(info)
    protocol = info.get("protocol") or None
    header, rows = _results_table(info.get("results") or [])
    content = _ENV.get_template(f"{info['method']}.md").render(
        card_data=data.to_yaml(),
        model_name=_model_name(info),
        model_type=info["model_type"],
        base_model=info["base_model"],
        templates=info.get("templates") or [],
        hyperparameters=info.get("hyperparameters") or {},
        preset=info.get("preset"),
        settings=info.get("settings") or {},
        protocol=protocol,
        protocol_text=PROTOCOL_TEXT.get(protocol.get("kind"), "") if protocol else "",
        results_header=header,
        results_rows=rows,
        repo_id=info.get("repo_id") or "path/to/this/model",
    )
    return ModelCard(content)


def write_model_card(info: dict[str, Any], folder: str | os.PathLike) -> Path:
    """Render the card of ``info`` and write it to ``folder/README.md``; returns that path."""
    path = Path(folder) / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    render_model_card(info).save(path)
    return path


def model_card_info(model) -> dict[str, Any]:
    """The ``info`` dict of an hf_zsl model: its config plus the ``protocol`` / ``results`` that the
    training and evaluation code records in ``model.card_info``."""
    config = model.config
    # Base fields are described elsewhere; a config may name fields too bulky for a table (in config.json only).
    skipped = {field.name for field in dataclasses.fields(HfZslConfig)} | set(getattr(config, "card_excluded_fields", ()))
    hyperparameters = {
        field.name: getattr(config, field.name)
        for field in dataclasses.fields(type(config))
        if field.name not in skipped
    }
    return {
        "method": config.method,
        "model_type": config.model_type,
        "base_model": config.base_model_name_or_path,
        "templates": config.templates,
        "hyperparameters": hyperparameters,
        "protocol": model.card_info.get("protocol"),
        "results": model.card_info.get("results", []),
        **{key: model.card_info[key] for key in ("model_name", "repo_id", "preset", "settings") if key in model.card_info},
    }


def write_card_for_model(model, folder: str | os.PathLike) -> Path:
    """``save_pretrained``'s card hook: README.md of ``model`` in ``folder``."""
    return write_model_card(model_card_info(model), folder)
