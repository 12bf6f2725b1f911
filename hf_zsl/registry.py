"""The method registry: one entry per method, registered with the transformers Auto classes."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transformers import AutoConfig, AutoModelForZeroShotImageClassification
from transformers.models.auto.modeling_auto import MODEL_FOR_ZERO_SHOT_IMAGE_CLASSIFICATION_MAPPING_NAMES

from .modeling.configuration_ccli import CCLIConfig
from .modeling.configuration_cfzsl import CFZSLConfig
from .modeling.configuration_coop import CoOpConfig
from .modeling.configuration_dfzsl import DFZSLConfig
from .modeling.configuration_linear_probe import LinearProbeConfig
from .modeling.configuration_rtos import RTOSConfig
from .modeling.configuration_tip_adapter import TipAdapterConfig, TipAdapterFConfig
from .modeling.configuration_zeroshot import ZeroShotCLIPConfig
from .modeling.modeling_base import HfZslPreTrainedModel
from .modeling.modeling_ccli import CCLIModel
from .modeling.modeling_cfzsl import CFZSLModel
from .modeling.modeling_coop import CoOpModel
from .modeling.modeling_dfzsl import DFZSLModel
from .modeling.modeling_linear_probe import LinearProbeModel
from .modeling.modeling_rtos import RTOSModel
from .modeling.modeling_tip_adapter import TipAdapterFModel, TipAdapterModel
from .modeling.modeling_zeroshot import ZeroShotCLIPModel
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
    """Register ``method`` with ``AutoConfig`` / ``AutoModelForZeroShotImageClassification`` and
    mark its classes for ``auto_map`` export, so saved folders also load with remote code."""
    METHODS[method.name] = method
    model_type = method.config_class.model_type
    AutoConfig.register(model_type, method.config_class, exist_ok=True)
    AutoModelForZeroShotImageClassification.register(method.config_class, method.model_class, exist_ok=True)
    # The pipeline checks model support against this name table, which `register` does not update.
    MODEL_FOR_ZERO_SHOT_IMAGE_CLASSIFICATION_MAPPING_NAMES[model_type] = method.model_class.__name__
    method.config_class.register_for_auto_class()
    method.model_class.register_for_auto_class("AutoModelForZeroShotImageClassification")


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"Unknown method {name!r}; available: {', '.join(sorted(METHODS))}.")
    return METHODS[name]


register(Method("zeroshot", ZeroShotCLIPConfig, ZeroShotCLIPModel))
register(Method("linear_probe", LinearProbeConfig, LinearProbeModel, fit=linear_probe.fit, defaults=linear_probe.DEFAULTS))
register(Method("ccli", CCLIConfig, CCLIModel, fit=ccli.fit, defaults=ccli.DEFAULTS))
register(Method("tip_adapter", TipAdapterConfig, TipAdapterModel, fit=tip_adapter.fit, defaults=tip_adapter.DEFAULTS))
register(Method("tip_adapter_f", TipAdapterFConfig, TipAdapterFModel, fit=tip_adapter.fit, defaults=tip_adapter.DEFAULTS))
register(Method("rtos", RTOSConfig, RTOSModel, fit=rtos.fit, defaults=rtos.DEFAULTS))
register(Method("coop", CoOpConfig, CoOpModel, fit=coop.fit, defaults=coop.DEFAULTS))
register(Method("cfzsl", CFZSLConfig, CFZSLModel, fit=cfzsl.fit, defaults=cfzsl.DEFAULTS, protocols=("gzsl",)))
register(
    Method("dfzsl", DFZSLConfig, DFZSLModel, fit=dfzsl.fit, defaults=dfzsl.DFZSLSettings(), protocols=("gzsl", "base2new"))
)
