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
from .modeling.encoder_base import SIGMOID
from .modeling.encoders import encoder_class
from .modeling.modeling_base import HfZslPreTrainedModel
from .modeling.modeling_ccli import CCLIModel
from .modeling.modeling_cfzsl import CFZSLModel
from .modeling.modeling_coop import CoOpModel
from .modeling.modeling_dfzsl import DFZSLModel
from .modeling.modeling_linear_probe import LinearProbeModel
from .modeling.modeling_rtos import RTOSModel
from .modeling.modeling_tip_adapter import TipAdapterFModel, TipAdapterModel
from .modeling.modeling_zeroshot import ZeroShotCLIPModel, ZeroShotSiglipModel
from .presets import Presets
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
        presets: ``fit``'s named settings (:class:`~hf_zsl.presets.Presets`: ``embedded``, and ``paper``
            where the official recipe is known), one chosen per run from the base and ``--preset``, which a
            recipe's ``settings:`` mapping overrides field by field; ``None`` when nothing is trained.
        build_hyperparameters: ``build_hyperparameters(preset, class_names) -> dict``, what a build over a base
            whose preset is ``preset`` configures by default (e.g. RTOS's anchor vocabulary); ``None``: nothing.
        protocols: the protocol kinds ``fit`` can train on (``fewshot``, ``base2new``, ``gzsl``, ``dg``).
        sigmoid_model_class: the model class over bases scored with sigmoids (SigLIP), whose model type
            tells the stock pipeline so; ``None``: :attr:`model_class` serves every base (a trained
            method's logits are trained with a softmax cross-entropy and read with a softmax).
    """

    name: str
    config_class: type
    model_class: type[HfZslPreTrainedModel]
    fit: Callable | None = None
    presets: Presets | None = None
    build_hyperparameters: Callable | None = None
    protocols: tuple[str, ...] = ALL_PROTOCOLS
    sigmoid_model_class: type[HfZslPreTrainedModel] | None = None

    @property
    def defaults(self) -> Any:
        """The ``embedded`` preset's settings (``None`` when nothing is trained)."""
        return None if self.presets is None else self.presets.embedded

    def check_run(self, base, preset: str | None = None, settings=None) -> str | None:
        """Validate a run's ``preset`` and ``settings`` overrides over ``base`` before anything is computed;
        returns the preset's name (``None`` for a method that trains nothing).

        Raises:
            ValueError: an unknown preset (naming the method's), a settings field the method lacks, or a
                preset or settings for a method that trains nothing.
        """
        if self.presets is None:
            if preset is not None or settings:
                raise ValueError(f"{self.name} trains nothing, so it takes no settings or preset; got {settings or preset!r}.")
            return None
        return self.presets.check(self.name, base, preset, settings)

    def model_class_for(self, base) -> type[HfZslPreTrainedModel]:
        """The model class to build over ``base`` (a transformers dual encoder)."""
        sigmoid = encoder_class(getattr(base.config, "model_type", None)).probability == SIGMOID
        return self.sigmoid_model_class if sigmoid and self.sigmoid_model_class is not None else self.model_class


METHODS: dict[str, Method] = {}


def register(method: Method) -> None:
    """Register ``method`` with ``AutoConfig`` / ``AutoModelForZeroShotImageClassification`` and
    mark its classes for ``auto_map`` export, so saved folders also load with remote code."""
    METHODS[method.name] = method
    for model_class in filter(None, (method.model_class, method.sigmoid_model_class)):
        config_class, model_type = model_class.config_class, model_class.config_class.model_type
        AutoConfig.register(model_type, config_class, exist_ok=True)
        AutoModelForZeroShotImageClassification.register(config_class, model_class, exist_ok=True)
        # The pipeline checks model support against this name table, which `register` does not update.
        MODEL_FOR_ZERO_SHOT_IMAGE_CLASSIFICATION_MAPPING_NAMES[model_type] = model_class.__name__
        config_class.register_for_auto_class()
        model_class.register_for_auto_class("AutoModelForZeroShotImageClassification")


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"Unknown method {name!r}; available: {', '.join(sorted(METHODS))}.")
    return METHODS[name]


register(Method("zeroshot", ZeroShotCLIPConfig, ZeroShotCLIPModel, sigmoid_model_class=ZeroShotSiglipModel))
register(Method("linear_probe", LinearProbeConfig, LinearProbeModel, fit=linear_probe.fit, presets=linear_probe.PRESETS,
                build_hyperparameters=linear_probe.build_hyperparameters))
register(Method("ccli", CCLIConfig, CCLIModel, fit=ccli.fit, presets=ccli.PRESETS, build_hyperparameters=ccli.build_hyperparameters))
register(Method("tip_adapter", TipAdapterConfig, TipAdapterModel, fit=tip_adapter.fit, presets=tip_adapter.PRESETS))
register(Method("tip_adapter_f", TipAdapterFConfig, TipAdapterFModel, fit=tip_adapter.fit, presets=tip_adapter.PRESETS))
register(Method("rtos", RTOSConfig, RTOSModel, fit=rtos.fit, presets=rtos.PRESETS, build_hyperparameters=rtos.build_hyperparameters))
register(Method("coop", CoOpConfig, CoOpModel, fit=coop.fit, presets=coop.PRESETS))
register(Method("cfzsl", CFZSLConfig, CFZSLModel, fit=cfzsl.fit, presets=cfzsl.PRESETS, protocols=("gzsl",)))
register(
    Method("dfzsl", DFZSLConfig, DFZSLModel, fit=dfzsl.fit, presets=dfzsl.PRESETS, protocols=("gzsl", "base2new"))
)
