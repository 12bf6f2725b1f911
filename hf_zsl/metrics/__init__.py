"""Metrics of the zero-shot / few-shot protocols, as plain functions and as local ``evaluate`` modules.

The ``evaluate`` modules live in ``hf_zsl/metrics/<name>/<name>.py`` and load by path, so they work
offline (``HF_HUB_OFFLINE=1``, empty ``HF_HOME``); their arithmetic is the plain functions of
:mod:`hf_zsl.metrics.functional`, re-exported here. All scores are fractions in [0, 1].
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .functional import (
    accuracy,
    base_to_new,
    gzsl,
    harmonic_mean,
    mean_per_class_accuracy,
    per_class_accuracy,
    top_k_accuracy,
    zsl_unseen,
)

if TYPE_CHECKING:
    import evaluate

METRICS = ("accuracy", "mean_per_class_accuracy", "gzsl", "base_to_new", "zsl_unseen")


def metric_path(name: str) -> str:
    """Filesystem path of the ``evaluate`` module script of metric ``name``."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; hf_zsl ships {list(METRICS)}.")
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), name, f"{name}.py")


def load_metric(name: str, **kwargs) -> evaluate.EvaluationModule:
    """``evaluate.load`` of the packaged module ``name`` by path (never the Hub); ``kwargs`` go to ``evaluate.load``."""
    import evaluate  # deferred: evaluate pulls in datasets, which the plain functions do not need

    return evaluate.load(metric_path(name), **kwargs)


__all__ = [
    "METRICS",
    "accuracy",
    "base_to_new",
    "gzsl",
    "harmonic_mean",
    "load_metric",
    "mean_per_class_accuracy",
    "metric_path",
    "per_class_accuracy",
    "zsl_unseen",
]
