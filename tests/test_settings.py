"""Settings: a recipe's mapping overrides a method's own defaults field by field, the protocol seeds training."""

import dataclasses

import pytest

from test_linear_probe import few_shot_protocol

from hf_zsl.methods import ccli, cfzsl, coop, linear_probe, rtos, tip_adapter
from hf_zsl.methods.dfzsl import DFZSLSettings
from hf_zsl.registry import METHODS, get_method
from hf_zsl.runs import fit_method
from hf_zsl.training import FitSettings, PenalisedTrainer, run_settings, settings_from_dict


class _View:
    seed = 7


def test_flat_settings_keep_the_methods_other_defaults():
    settings = settings_from_dict(rtos.DEFAULTS, {"epochs": 3})
    assert settings == dataclasses.replace(rtos.DEFAULTS, epochs=3)
    assert settings.learning_rate == rtos.DEFAULTS.learning_rate != FitSettings().learning_rate


def test_nested_settings_keep_the_other_defaults():
    settings = settings_from_dict(DFZSLSettings(), {"seed": 4, "generator": {"epochs": 2}, "simulator": {"theta": 0.5}})
    assert settings.seed == 4 and settings.generator.epochs == 2 and settings.simulator.theta == 0.5
    default = DFZSLSettings()
    assert settings.generator.learning_rate == default.generator.learning_rate
    assert settings.classifier == default.classifier and settings.flpt == default.flpt


@pytest.mark.parametrize("values, message", [({"epoch": 3}, "Unknown FitSettings fields \\['epoch'\\]"), ({"generator": {"epoch": 1}}, "GeneratorSettings")])
def test_unknown_fields_are_named(values, message):
    defaults = FitSettings() if "epoch" in values else DFZSLSettings()
    with pytest.raises(ValueError, match=message):
        settings_from_dict(defaults, values)


@pytest.mark.parametrize("values", [{"epochs": 0}, {"batch_size": -1}, {"learning_rate": 0.0}, {"weight_decay": -0.1}])
def test_fit_settings_out_of_range_are_refused(values):
    with pytest.raises(ValueError, match="FitSettings"):
        FitSettings(**values)
    with pytest.raises(ValueError, match="FitSettings"):
        settings_from_dict(rtos.DEFAULTS, values)


def test_a_settings_object_is_not_a_mapping_of_overrides():
    with pytest.raises(TypeError, match="mapping of field names"):
        settings_from_dict(rtos.DEFAULTS, FitSettings(epochs=3))


@pytest.mark.parametrize(
    "values, message",
    [({"epochs": "ten"}, "'epochs' takes int values"), ({"epochs": True}, "'epochs' takes int values"),
     ({"learning_rate": "1e-3"}, "'learning_rate' takes float values"), ({"generator": 30}, "'generator' takes a mapping")],
)
def test_values_of_the_wrong_type_are_refused(values, message):
    defaults = DFZSLSettings() if "generator" in values else rtos.DEFAULTS
    with pytest.raises(TypeError, match=message):
        settings_from_dict(defaults, values)


def test_an_integer_is_a_valid_float_setting():
    assert settings_from_dict(rtos.DEFAULTS, {"learning_rate": 1}).learning_rate == 1


def test_run_settings_take_the_protocol_seed_unless_overridden():
    assert run_settings(linear_probe.DEFAULTS, _View()) == dataclasses.replace(linear_probe.DEFAULTS, seed=7)
    assert run_settings(linear_probe.DEFAULTS, _View(), {"seed": 3, "epochs": 2}).seed == 3
    assert run_settings(DFZSLSettings(), _View(), {"classifier": {"epochs": 5}}).seed == 7


def test_methods_declare_their_own_defaults():
    expected = {
        "linear_probe": linear_probe.DEFAULTS, "ccli": ccli.DEFAULTS, "tip_adapter": tip_adapter.DEFAULTS,
        "tip_adapter_f": tip_adapter.DEFAULTS, "rtos": rtos.DEFAULTS, "coop": coop.DEFAULTS, "cfzsl": cfzsl.DEFAULTS,
    }
    for name, defaults in expected.items():
        assert get_method(name).defaults is defaults
    assert get_method("dfzsl").defaults == DFZSLSettings()
    assert get_method("zeroshot").defaults is None
    assert all((method.fit is None) == (method.defaults is None) for method in METHODS.values())


class _TrainingStarted(Exception):
    pass


@pytest.mark.parametrize("method", ["linear_probe", "rtos", "ccli", "coop", "tip_adapter_f"])
@pytest.mark.parametrize("overrides, expected", [(None, {"seed": 5}), ({"epochs": 2}, {"seed": 5, "num_train_epochs": 2}), ({"seed": 11}, {"seed": 11})])
def test_fit_method_trains_with_the_methods_defaults_and_the_protocols_seed(tiny_base, monkeypatch, method, overrides, expected):
    """What reaches ``Trainer``: the method's embedded preset, seeded by the protocol, with a recipe's overrides."""
    seen = {}

    def record(trainer, *args, **kwargs):
        seen.update(seed=trainer.args.seed, data_seed=trainer.args.data_seed, num_train_epochs=trainer.args.num_train_epochs,
                    learning_rate=trainer.args.learning_rate)
        raise _TrainingStarted

    monkeypatch.setattr(PenalisedTrainer, "train", record)
    with pytest.raises(_TrainingStarted):
        fit_method(method, tiny_base, few_shot_protocol(seed=5), overrides, preset="embedded")
    defaults = get_method(method).defaults
    assert seen["learning_rate"] == defaults.learning_rate or method == "coop"  # CoOp scales its rate on a grid
    assert seen["data_seed"] == seen["seed"]
    assert {key: seen[key] for key in expected} == expected


def test_settings_are_checked_before_training(tiny_base):
    with pytest.raises(ValueError, match="Unknown FitSettings fields \\['epoch'\\]"):
        fit_method("rtos", tiny_base, few_shot_protocol(seed=1), {"epoch": 3})
    with pytest.raises(ValueError, match="zeroshot trains nothing"):
        fit_method("zeroshot", tiny_base, few_shot_protocol(seed=1), {"epochs": 3})
