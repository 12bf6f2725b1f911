"""Presets (DESIGN §3b): one mechanism for every method, resolved from the base, recorded with the run."""

import dataclasses
import json

import pytest
import torch
from test_linear_probe import few_shot_protocol
from test_official_fixtures import _load

import hf_zsl
from hf_zsl import runs
from hf_zsl.cli import main
from hf_zsl.methods import coop, tip_adapter
from hf_zsl.presets import EMBEDDED, PAPER, default_preset
from hf_zsl.registry import METHODS, get_method
from hf_zsl.runs import fit_method
from hf_zsl.training import EpochCounter, EpochViews, PenalisedTrainer, epoch_cosine, steps_per_epoch


class _View:
    seed, k = 3, 16


def test_the_base_chooses_the_default_preset(tiny_base):
    assert default_preset("embedded") == default_preset("embedded-siglip") == EMBEDDED
    assert default_preset(tiny_base) == default_preset("openai/clip-vit-base-patch16") == PAPER


def test_every_trained_method_has_an_embedded_preset_equal_to_its_former_defaults():
    for method in METHODS.values():
        if method.fit is not None:
            assert EMBEDDED in method.presets.names() and method.defaults is method.presets.embedded
    assert get_method("coop").defaults == coop.DEFAULTS and get_method("tip_adapter").defaults == tip_adapter.DEFAULTS


@pytest.mark.parametrize(
    "method, preset, settings, message",
    [("coop", "papr", None, "coop has no preset 'papr'; choose one of embedded, paper"),
     ("coop", "paper", {"search": "official"}, "Unknown CoOpSettings fields \\['search'\\]"),
     ("zeroshot", "paper", None, "zeroshot trains nothing")],
)
def test_bad_presets_fail_before_anything_is_built(tiny_base, monkeypatch, method, preset, settings, message):
    monkeypatch.setattr(runs, "build", lambda *args, **kwargs: pytest.fail("built before the preset was checked"))
    with pytest.raises(ValueError, match=message):
        fit_method(method, tiny_base, few_shot_protocol(seed=1), settings, preset=preset)


def test_a_method_without_a_paper_preset_defaults_to_embedded_on_real_bases(tiny_base):
    with pytest.raises(ValueError, match="cfzsl has no preset 'paper'; choose one of embedded"):
        get_method("cfzsl").check_run(tiny_base, "paper")
    view = few_shot_protocol(seed=1).training_view()
    assert get_method("cfzsl").presets.resolve("cfzsl", tiny_base, view).preset == EMBEDDED


@pytest.mark.parametrize("shots, epochs", [(1, 50), (2, 100), (4, 100), (8, 200), (16, 200), (None, 200)])
def test_coop_paper_epochs_follow_the_shot_count(shots, epochs):
    view = type("View", (), {"seed": 1, "k": shots})()
    resolved = get_method("coop").presets.resolve("coop", "openai/clip-vit-base-patch16", view)
    assert resolved.preset == PAPER and resolved.settings.epochs == epochs and resolved.settings.seed == 1
    assert resolved.settings.max_grad_norm == 0 and resolved.settings.optimizer == "sgd"


def test_settings_override_single_fields_of_the_preset():
    resolved = get_method("coop").presets.resolve("coop", "some/base", _View(), overrides={"epochs": 7})
    assert resolved.settings == dataclasses.replace(coop.paper(_View()), epochs=7, seed=3)
    assert resolved.to_dict()["preset"] == PAPER and resolved.to_dict()["settings"]["epochs"] == 7


def test_epoch_cosine_is_dasssl_schedule():
    """The lr in force during each epoch equals the official scheduler's (fixture ``coop_step``)."""
    _, meta = _load("coop_step")
    for epochs, expected in meta["lr_schedules"].items():
        settings = dataclasses.replace(coop.paper(_View()), epochs=int(epochs))
        per_epoch = steps_per_epoch(100, settings)
        multiplier = epoch_cosine(settings, 100)
        ours = [settings.learning_rate * multiplier(e * per_epoch + per_epoch - 1) for e in range(int(epochs))]
        assert max(abs(a - b) for a, b in zip(ours, expected)) <= 1e-12


def test_drop_last_follows_dassl():
    settings = coop.paper(_View())
    assert steps_per_epoch(100, settings) == 3 and steps_per_epoch(20, settings) == 1


def test_each_epoch_reads_its_own_view():
    views = torch.arange(3 * 2 * 1, dtype=torch.float).view(3, 2, 1)
    data = EpochViews(views, torch.tensor([0, 1]))
    counter = EpochCounter(data)
    seen = []
    for _ in range(4):
        counter.on_epoch_begin(None, None, None)
        seen.append(float(data[1]["image_embeds"]))
    assert seen == [1.0, 3.0, 5.0, 1.0]


@pytest.mark.parametrize("preset, clipping", [("embedded", 1.0), ("paper", 0.0)])
def test_gradient_clipping_is_a_setting(tiny_base, monkeypatch, preset, clipping):
    seen = {}

    def record(trainer, *args, **kwargs):
        seen.update(max_grad_norm=trainer.args.max_grad_norm, optimizer=type(trainer.optimizer).__name__)
        raise RuntimeError("stop")

    monkeypatch.setattr(PenalisedTrainer, "train", record)
    with pytest.raises(RuntimeError, match="stop"):
        fit_method("coop", tiny_base, few_shot_protocol(seed=1, k=2), {"train_views": 0}, preset=preset)
    assert seen["max_grad_norm"] == clipping
    assert seen["optimizer"] == ("SGD" if preset == "paper" else "NoneType")


def test_build_takes_the_preset_of_the_base(tiny_base):
    assert hf_zsl.build("linear_probe", tiny_base, class_names=["a", "b"]).config.form == "logistic"
    assert hf_zsl.build("linear_probe", tiny_base, preset="embedded", class_names=["a", "b"]).config.form == "cosine"
    assert hf_zsl.build("linear_probe", "embedded", class_names=["a", "b"]).config.form == "cosine"
    with pytest.raises(ValueError, match="choose one of embedded, paper"):
        hf_zsl.build("linear_probe", tiny_base, preset="fast", class_names=["a", "b"])


def test_train_records_the_preset_and_settings(tmp_path, tiny_base):
    folder = tmp_path / "run"
    assert main(["train", "--method", "linear_probe", "--protocol", "base2new", "--shots", "2", "--model", tiny_base,
                 "--preset", "paper", "--output-dir", str(folder)]) == 0
    record = json.loads((folder / "eval_results.json").read_text())
    assert record["preset"] == "paper" and record["settings"]["search_steps"] == 8
    card = (folder / "README.md").read_text()
    assert "paper" in card and "search_steps" in card
    assert main(["train", "--method", "coop", "--protocol", "base2new", "--model", tiny_base, "--preset", "nope",
                 "--output-dir", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()


def test_vocabularies_follow_the_preset_at_build_time(tiny_base):
    from hf_zsl.methods.ccli_concepts import shapes_concepts
    from hf_zsl.modeling.configuration_rtos import DEFAULT_ANCHOR_VOCABULARY
    from hf_zsl.vocabularies import exclude, load_vocabulary

    targets = ["tench", "red circle"]
    rtos = hf_zsl.build("rtos", tiny_base, class_names=targets)
    general = exclude(load_vocabulary("open_semantics"), targets)
    assert "tench" in load_vocabulary("open_semantics") and "tench" not in rtos.config.anchor_names
    assert set(rtos.config.anchor_names) <= set(general) and len(rtos.config.anchor_names) > 2000
    embedded = hf_zsl.build("rtos", "embedded", class_names=targets)
    assert set(embedded.config.anchor_names) <= set(DEFAULT_ANCHOR_VOCABULARY)
    assert hf_zsl.build("ccli", tiny_base, class_names=targets).config.concepts == exclude(load_vocabulary("visual_concepts"), targets)
    assert hf_zsl.build("ccli", "embedded", class_names=targets).config.concepts == shapes_concepts()
    assert hf_zsl.build("ccli", tiny_base, preset="embedded", class_names=targets).config.concepts == shapes_concepts()
