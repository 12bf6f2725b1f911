"""The method registry: one entry per method, registered with the transformers Auto classes."""

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .auto import SIGMOID_CLASSES, config_class, model_class, register_models
from .modeling.encoder_base import SIGMOID
from .modeling.encoders import encoder_class
from .modeling.modeling_base import HfZslPreTrainedModel

if TYPE_CHECKING:  # presets import Trainer: loaded with a method's training module, not with the registry
    from .presets import Presets


ALL_PROTOCOLS = ("fewshot", "base2new", "gzsl", "dg")


@dataclass(frozen=True)
class Method:
    """A registered method.

    Attributes:
        name: what ``hf_zsl.build`` and ``--method`` call it.
        config_class, model_class: its ``modeling/`` pair.
        training: the module of ``hf_zsl.methods`` holding ``fit``, ``PRESETS`` and, optionally,
            ``build_hyperparameters`` (``None``: nothing to train), imported on first use (it loads Trainer,
            datasets...).
        protocols: the protocol kinds ``fit`` can train on (``fewshot``, ``base2new``, ``gzsl``, ``dg``).
        sigmoid_model_class: the model class over bases scored with sigmoids (SigLIP), whose model type
            tells the stock pipeline so; ``None``: :attr:`model_class` serves every base (a trained
            method's logits are trained with a softmax cross-entropy and read with a softmax).
    """

    name: str
    config_class: type
    model_class: type[HfZslPreTrainedModel]
    training: str | None = None
    protocols: tuple[str, ...] = ALL_PROTOCOLS
    sigmoid_model_class: type[HfZslPreTrainedModel] | None = None

    def model_class_for(self, base) -> type[HfZslPreTrainedModel]:
        """The model class to build over ``base`` (a transformers dual encoder)."""
        sigmoid = encoder_class(getattr(base.config, "model_type", None)).probability == SIGMOID
        return self.sigmoid_model_class if sigmoid and self.sigmoid_model_class is not None else self.model_class

    def _training_attribute(self, name: str) -> Any:
        if self.training is None:
            return None
        return getattr(importlib.import_module(f"hf_zsl.methods.{self.training}"), name)

    @property
    def fit(self) -> Callable | None:
        """``fit(model, training_view, settings=None) -> dict`` trains a freshly built model on a protocol's
        training view (``None``: nothing to train); it returns what it chose (hyper-parameters, validation
        scores) and ``train_seconds``."""
        return self._training_attribute("fit")

    @property
    def presets(self) -> "Presets | None":
        """``fit``'s named settings (:class:`~hf_zsl.presets.Presets`: ``embedded``, and ``paper`` where the
        official recipe is known), one chosen per run from the base and ``--preset``, which a recipe's
        ``settings:`` mapping overrides field by field; ``None`` when nothing is trained."""
        return self._training_attribute("PRESETS")

    @property
    def build_hyperparameters(self) -> Callable | None:
        """``build_hyperparameters(preset, class_names) -> dict``: what a build over a base whose preset is
        ``preset`` configures by default (e.g. RTOS's anchor vocabulary); ``None``: nothing."""
        return getattr(importlib.import_module(f"hf_zsl.methods.{self.training}"), "build_hyperparameters", None) if self.training else None

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


METHODS: dict[str, Method] = {}


def register(method: Method) -> None:
    """Add ``method`` to :data:`METHODS` (its classes are registered with the Auto classes by
    :func:`hf_zsl.auto.register_models`, run below)."""
    METHODS[method.name] = method


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"Unknown method {name!r}; available: {', '.join(sorted(METHODS))}.")
    return METHODS[name]


def _method(name: str, training: str | None = None, **options) -> Method:
    """The :class:`Method` ``name`` with its ``modeling/`` classes (:data:`hf_zsl.auto.METHOD_CLASSES`)."""
    sigmoid = model_class(name, sigmoid=True) if name in SIGMOID_CLASSES else None
    return Method(name, config_class(name), model_class(name), training, sigmoid_model_class=sigmoid, **options)


register_models()
register(_method("zeroshot"))
register(_method("linear_probe", "linear_probe"))
register(_method("ccli", "ccli"))
register(_method("tip_adapter", "tip_adapter"))
register(_method("tip_adapter_f", "tip_adapter"))
register(_method("rtos", "rtos"))
register(_method("coop", "coop"))
register(_method("cfzsl", "cfzsl", protocols=("gzsl",)))
register(_method("dfzsl", "dfzsl", protocols=("gzsl", "base2new")))
