"""Recipe settings: YAML mappings become (nested) settings dataclasses, unknown keys are errors."""

import pytest

from hf_zsl.methods.dfzsl import DFZSLSettings
from hf_zsl.registry import get_method
from hf_zsl.training import FitSettings, settings_from_dict


def test_flat_settings():
    assert settings_from_dict(FitSettings, {"epochs": 3, "learning_rate": 0.1}) == FitSettings(epochs=3, learning_rate=0.1)


def test_nested_settings_keep_the_other_defaults():
    settings = settings_from_dict(DFZSLSettings, {"seed": 4, "generator": {"epochs": 2}, "simulator": {"theta": 0.5}})
    assert settings.seed == 4 and settings.generator.epochs == 2 and settings.simulator.theta == 0.5
    default = DFZSLSettings()
    assert settings.generator.learning_rate == default.generator.learning_rate
    assert settings.classifier == default.classifier and settings.flpt == default.flpt


@pytest.mark.parametrize("values, message", [({"epoch": 3}, "Unknown FitSettings fields \\['epoch'\\]"), ({"generator": {"epoch": 1}}, "GeneratorSettings")])
def test_unknown_fields_are_named(values, message):
    settings_class = FitSettings if "epoch" in values else DFZSLSettings
    with pytest.raises(ValueError, match=message):
        settings_from_dict(settings_class, values)


def test_methods_declare_their_settings_class():
    assert get_method("dfzsl").settings_class is DFZSLSettings
    assert get_method("coop").settings_class is FitSettings
