"""The method registry: one entry per method, registered with the transformers Auto classes."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .auto import config_class, model_class, register_models
from .modeling.modeling_base import HfZslPreTrainedModel
from .methods import ccli, cfzsl, coop, dfzsl, linear_probe, rtos, tip_adapter


ALL_PROTOCOLS = ("fewshot", "base2new", "gzsl", "dg")


@dataclass(frozen=True)
class Method:
    """A registered method.

    Attributes:
        name: what ``hf_zsl.build`` and ``--method`` call it.
        config_class, model_class: its ``modeling/`` pair.
        fit: ``fit(model, training_view, settings=None) -> dict`` trains a freshly built model on a
            protocol's training view (``None``: nothing to train); it returns what it chose
            (hyper-parameters, validation scores) and ``train_seconds``.
        defaults: ``fit``'s default settings (a dataclass instance, e.g. a
            :class:`~hf_zsl.training.FitSettings`), which a recipe's ``settings:`` mapping overrides
            field by field (:func:`~hf_zsl.training.run_settings`); ``None`` when nothing is trained.
        protocols: the protocol kinds ``fit`` can train on (``fewshot``, ``base2new``, ``gzsl``, ``dg``).
    """

    name: str
    config_class: type
    model_class: type[HfZslPreTrainedModel]
    fit: Callable | None = None
    defaults: Any = None
    protocols: tuple[str, ...] = ALL_PROTOCOLS


METHODS: dict[str, Method] = {}


def register(method: Method) -> None:
    """Add ``method`` to :data:`METHODS` (its classes are registered with the Auto classes by
    :func:`hf_zsl.auto.register_models`, run below)."""
    METHODS[method.name] = method


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"Unknown method {name!r}; available: {', '.join(sorted(METHODS))}.")
    return METHODS[name]


def _method(name: str, **training) -> Method:
    """The :class:`Method` ``name`` with its ``modeling/`` classes (:data:`hf_zsl.auto.METHOD_CLASSES`)."""
    return Method(name, config_class(name), model_class(name), **training)


register_models()
register(_method("zeroshot"))
register(_method("linear_probe", fit=linear_probe.fit, defaults=linear_probe.DEFAULTS))
register(_method("ccli", fit=ccli.fit, defaults=ccli.DEFAULTS))
register(_method("tip_adapter", fit=tip_adapter.fit, defaults=tip_adapter.DEFAULTS))
register(_method("tip_adapter_f", fit=tip_adapter.fit, defaults=tip_adapter.DEFAULTS))
register(_method("rtos", fit=rtos.fit, defaults=rtos.DEFAULTS))
register(_method("coop", fit=coop.fit, defaults=coop.DEFAULTS))
register(_method("cfzsl", fit=cfzsl.fit, defaults=cfzsl.DEFAULTS, protocols=("gzsl",)))
register(_method("dfzsl", fit=dfzsl.fit, defaults=dfzsl.DFZSLSettings(), protocols=("gzsl", "base2new")))
