"""hf_zsl: adapt CLIP to new classes the HuggingFace way.

Importing the package registers every method with ``AutoConfig`` and
``AutoModelForZeroShotImageClassification``, and serves the zero-shot image classification
pipeline with label validation for hf_zsl models. The import itself is cheap: the registrations run
when transformers' Auto classes and pipelines are imported (at once if they already are; see
:mod:`hf_zsl.auto`), and the names below and the submodules load on first use.
"""

import importlib
import importlib.util

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
    """The names of :data:`_LAZY` and the submodules (``hf_zsl.shapes``, ``hf_zsl.protocols``...), imported on first use."""
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'hf_zsl' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
