"""hf_zsl: adapt CLIP to new classes the HuggingFace way.

Importing the package registers every method with ``AutoConfig`` and
``AutoModelForZeroShotImageClassification``, and serves the zero-shot image classification
pipeline with label validation for hf_zsl models. The import itself is cheap: the registrations run
when transformers' Auto classes and pipelines are imported (at once if they already are; see
:mod:`hf_zsl.auto`), and the names below load their modules on first use.
"""

import importlib

from .auto import schedule_registrations
from .templates import TEMPLATE_SETS

__version__ = "0.1.0"

_LAZY = {
    "METHODS": "registry",
    "get_method": "registry",
    "build": "factory",
    "load_base": "factory",
    "load": "loading",
}

schedule_registrations()

__all__ = ["METHODS", "TEMPLATE_SETS", "build", "get_method", "load", "load_base"]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'hf_zsl' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
