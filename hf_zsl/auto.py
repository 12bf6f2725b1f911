"""Registration of every method's classes with transformers' Auto classes and pipeline.

:data:`METHOD_CLASSES` names each method's ``modeling/`` pair without importing it, so ``import
hf_zsl`` can schedule the registrations (:mod:`hf_zsl._imports`) instead of importing torch: configs
register once ``AutoConfig`` exists, models once ``AutoModelForZeroShotImageClassification`` exists,
the pipeline class once ``transformers.pipelines`` is imported. Every function here is idempotent.
"""

from __future__ import annotations

import importlib

from ._imports import when_imported

# method name → (configuration module:class, modeling module:class), both in hf_zsl.modeling
METHOD_CLASSES: dict[str, tuple[str, str]] = {
    "zeroshot": ("configuration_zeroshot:ZeroShotCLIPConfig", "modeling_zeroshot:ZeroShotCLIPModel"),
    "linear_probe": ("configuration_linear_probe:LinearProbeConfig", "modeling_linear_probe:LinearProbeModel"),
    "ccli": ("configuration_ccli:CCLIConfig", "modeling_ccli:CCLIModel"),
    "tip_adapter": ("configuration_tip_adapter:TipAdapterConfig", "modeling_tip_adapter:TipAdapterModel"),
    "tip_adapter_f": ("configuration_tip_adapter:TipAdapterFConfig", "modeling_tip_adapter:TipAdapterFModel"),
    "rtos": ("configuration_rtos:RTOSConfig", "modeling_rtos:RTOSModel"),
    "coop": ("configuration_coop:CoOpConfig", "modeling_coop:CoOpModel"),
    "cfzsl": ("configuration_cfzsl:CFZSLConfig", "modeling_cfzsl:CFZSLModel"),
    "dfzsl": ("configuration_dfzsl:DFZSLConfig", "modeling_dfzsl:DFZSLModel"),
}
# method name → its pair over sigmoid-scored bases (SigLIP), whose model type names "siglip"
SIGMOID_CLASSES: dict[str, tuple[str, str]] = {
    "zeroshot": ("configuration_zeroshot:ZeroShotSiglipConfig", "modeling_zeroshot:ZeroShotSiglipModel"),
}


def _load(qualified: str) -> type:
    module, name = qualified.split(":")
    return getattr(importlib.import_module(f"hf_zsl.modeling.{module}"), name)


def config_class(method: str, sigmoid: bool = False) -> type:
    """The configuration class of ``method`` (imports it); ``sigmoid``: its :data:`SIGMOID_CLASSES` one."""
    return _load((SIGMOID_CLASSES if sigmoid else METHOD_CLASSES)[method][0])


def model_class(method: str, sigmoid: bool = False) -> type:
    """The model class of ``method`` (imports it, and with it torch); ``sigmoid``: its :data:`SIGMOID_CLASSES` one."""
    return _load((SIGMOID_CLASSES if sigmoid else METHOD_CLASSES)[method][1])


def _all_classes():
    """Every ``(config class, model class)`` pair to register (imports them)."""
    for table in (METHOD_CLASSES, SIGMOID_CLASSES):
        for config, model in table.values():
            yield _load(config), _load(model)


def register_configs(configuration_auto=None) -> None:
    """Register every config with ``AutoConfig`` and mark it for ``auto_map`` export."""
    if configuration_auto is None:
        from transformers.models.auto import configuration_auto
    for config, _ in _all_classes():
        configuration_auto.AutoConfig.register(config.model_type, config, exist_ok=True)
        config.register_for_auto_class()


def register_models(modeling_auto=None) -> None:
    """Register every model with ``AutoModelForZeroShotImageClassification`` and mark it for ``auto_map``
    export (its config too: the model's registration needs the config class)."""
    if modeling_auto is None:
        from transformers.models.auto import modeling_auto
    register_configs()
    for config, model in _all_classes():
        modeling_auto.AutoModelForZeroShotImageClassification.register(config, model, exist_ok=True)
        # The pipeline checks model support against this name table, which `register` does not update.
        modeling_auto.MODEL_FOR_ZERO_SHOT_IMAGE_CLASSIFICATION_MAPPING_NAMES[config.model_type] = model.__name__
        model.register_for_auto_class("AutoModelForZeroShotImageClassification")


def _register_pipeline(_module) -> None:
    from .serving import register_pipeline

    register_pipeline()


def _attach_card_writer(modeling_base) -> None:
    from .cards import write_card_for_model

    modeling_base.HfZslPreTrainedModel.card_writer = write_card_for_model


def schedule_registrations() -> None:
    """Register everything as soon as the transformers module it extends is imported (at once if it is)."""
    when_imported("transformers.models.auto.configuration_auto", register_configs)
    when_imported("transformers.models.auto.modeling_auto", register_models)
    when_imported("transformers.pipelines", _register_pipeline)
    when_imported("hf_zsl.modeling.modeling_base", _attach_card_writer)
