"""DFZSL: the served model (FLPT prompt + residual + classifier) and the data-free training entry point."""

import dataclasses
import inspect

import datasets
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import LABELS
from PIL import Image

import hf_zsl
from hf_zsl.features import image_features
from hf_zsl.methods import dfzsl, linear_probe
from hf_zsl.methods.dfzsl import fitting
from hf_zsl.methods.dfzsl.classifier import ClassifierSettings
from hf_zsl.methods.dfzsl.generator import GeneratorSettings
from hf_zsl.methods.dfzsl.simulator import SimulatorSettings
from hf_zsl.modeling.prompting import name_token_ids
from hf_zsl.protocols import GZSLProtocol
from hf_zsl.training import FitSettings, LabelledFeatures

pytestmark = pytest.mark.usefixtures("one_thread")

SEEN = ["red circle", "blue square", "green star"]
NEW = ["cat", "yellow moon"]
COLOURS = [(220, 30, 30), (30, 30, 220), (30, 200, 30), (120, 120, 120), (230, 220, 40)]


def label_inputs(model, labels):
    return model.tokenizer(labels, padding=True, return_tensors="pt")


def tiny_settings(seed: int = 0) -> dfzsl.DFZSLSettings:
    """Stages shrunk to a few steps each: plumbing, not accuracy.

    μ starts at the server's rows: with five simulator steps, text-initialised μ of the random tiny CLIP
    would still disagree with a server fitted on its image features, leaving no trusted sample.
    """
    return dfzsl.DFZSLSettings(
        simulator=SimulatorSettings(steps=5, virtual_per_class=20, mu_init="classifier"),
        flpt=FitSettings(epochs=1, batch_size=32, learning_rate=3e-3, lr_scheduler_type="constant", logging_steps=100),
        generator=GeneratorSettings(epochs=1),
        classifier=ClassifierSettings(epochs=2),
        synthetic_per_class=20,
        seed=seed,
    )


def test_untrained_model_is_zero_shot_clip_with_the_flpt_prompt(tiny_base, images):
    model = hf_zsl.build("dfzsl", tiny_base)
    reference = hf_zsl.build("zeroshot", tiny_base, templates=["a photo of a {}."])
    text = label_inputs(model, LABELS)
    pixels = model.image_processor(images=images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        ours = model(**text, pixel_values=pixels)
        theirs = reference(**label_inputs(reference, LABELS), pixel_values=pixels)
        assert torch.count_nonzero(model.residual()) == 0
    torch.testing.assert_close(ours.text_embeds, theirs.text_embeds, atol=1e-5, rtol=0)
    cosines = theirs.logits_per_image / reference.logit_scale
    torch.testing.assert_close(ours.logits_per_image, cosines / model.config.temperature, atol=1e-4, rtol=0)


def test_classifier_rows_score_their_classes_and_other_labels_use_flpt(tiny_base, images):
    model = hf_zsl.build("dfzsl", tiny_base)
    dim = model.encoder.embed_dim
    rows = torch.randn(len(SEEN), dim, generator=torch.Generator().manual_seed(0))
    model.set_classifier(SEEN, rows, seen_class_names=SEEN[:2])
    out = model(**label_inputs(model, [*SEEN, "cat"]), pixel_values=model.image_processor(images=images, return_tensors="pt")["pixel_values"])
    torch.testing.assert_close(out.text_embeds[:3], torch.nn.functional.normalize(rows, dim=-1))
    with torch.no_grad():
        flpt = model.prompt_tuned_features(model.label_ids(**{k: v[3:] for k, v in label_inputs(model, [*SEEN, "cat"]).items()}))
    torch.testing.assert_close(out.text_embeds[3:], flpt)
    assert model.config.seen_class_names == SEEN[:2]


def test_residual_moves_every_image_by_the_same_vector(tiny_base):
    model = hf_zsl.build("dfzsl", tiny_base)
    with torch.no_grad():
        model.t2i[2].bias.fill_(1.0)
    images = torch.nn.functional.normalize(torch.randn(4, model.encoder.embed_dim), dim=-1)
    shift = model.adapt_images(images) - images
    torch.testing.assert_close(shift, model.config.residual_weight * torch.ones_like(shift))


@pytest.mark.parametrize(
    "rows, seen, message",
    [((2, None), SEEN[:1], "shape"), ((3, None), ["not a class"], "Seen classes")],
)
def test_set_classifier_rejects_bad_input(tiny_base, rows, seen, message):
    model = hf_zsl.build("dfzsl", tiny_base)
    dim = model.encoder.embed_dim
    with pytest.raises(ValueError, match=message):
        model.set_classifier(SEEN, torch.zeros(rows[0], dim), seen_class_names=seen)


def test_server_classifier_validates_its_weights():
    with pytest.raises(ValueError, match="one row per class"):
        dfzsl.ServerClassifier(SEEN, torch.zeros(2, 8))
    with pytest.raises(ValueError, match="two distinct"):
        dfzsl.ServerClassifier(["a", "a"], torch.zeros(2, 8))


@pytest.mark.parametrize(
    "names, weights, error, message",
    [
        (["a", "b"], torch.tensor([[1.0, float("nan")], [0.0, 1.0]]), ValueError, "\\['a'\\] are zero or not finite"),
        (["a", "b"], torch.tensor([[1.0, 0.0], [0.0, 0.0]]), ValueError, "\\['b'\\] are zero or not finite"),
        ("ab", torch.ones(2, 2), TypeError, "list of non-empty class-name strings"),
        (["a", " "], torch.ones(2, 2), TypeError, "list of non-empty class-name strings"),
        (["a", "b"], [[1.0, 0.0], [0.0, 1.0]], TypeError, "torch.as_tensor"),
        (["a", "b"], torch.ones(2, 0), ValueError, "one row per class"),
    ],
)
def test_server_classifier_rejects_bad_rows_and_names(names, weights, error, message):
    with pytest.raises(error, match=message):
        dfzsl.ServerClassifier(names, weights)


@pytest.mark.parametrize(
    "values, message",
    [({"held_out_fraction": -0.2}, "strictly between 0 and 1"), ({"held_out_fraction": 1.0}, "strictly between"),
     ({"synthetic_per_class": 0}, "at least 1")],
)
def test_settings_out_of_range_are_refused(values, message):
    with pytest.raises(ValueError, match=message):
        dfzsl.DFZSLSettings(**values)


def test_held_out_split_keeps_a_training_row_in_every_class():
    labels = torch.tensor([0] * 10 + [1] + [2, 2])
    (_, train), (_, held) = fitting._held_out_split(torch.zeros(13, 2), labels, 0.7, seed=0)
    assert torch.bincount(train, minlength=3).tolist() == [3, 1, 1]
    assert torch.bincount(held, minlength=3).tolist() == [7, 0, 1]


def server_for(model) -> dfzsl.ServerClassifier:
    """A server whose rows are the seen classes' text features plus noise (what a probe would learn)."""
    ids = name_token_ids(model.tokenizer, SEEN)
    with torch.no_grad():
        text = model.prompt_tuned_features(ids)
    noise = 0.1 * torch.randn(text.shape, generator=torch.Generator().manual_seed(1))
    return dfzsl.ServerClassifier(SEEN, torch.nn.functional.normalize(text.cpu() + noise, dim=-1))


def test_data_free_entry_point_reads_no_image(tiny_base, monkeypatch, tmp_path):
    """The data-free learner gets a classifier and class names; every way to read an image fails."""
    parameters = set(inspect.signature(dfzsl.fit_data_free).parameters)
    assert parameters == {"model", "server", "new_class_names", "settings", "protocol"}  # no data argument

    def forbidden(*args, **kwargs):
        raise AssertionError("DFZSL's data-free stages read an image")

    monkeypatch.setattr(datasets.Dataset, "__getitem__", forbidden)
    monkeypatch.setattr(datasets.Dataset, "__iter__", forbidden)
    monkeypatch.setattr(Image, "open", forbidden)
    monkeypatch.setattr("hf_zsl.features.image_features", forbidden)
    monkeypatch.setattr("hf_zsl.training.image_features", forbidden)
    model = hf_zsl.build("dfzsl", tiny_base)
    encode_images = model.encode_images
    model.encode_images = forbidden
    info = dfzsl.fit_data_free(model, server_for(model), NEW, tiny_settings())
    model.encode_images = encode_images

    assert model.config.class_names == SEEN + NEW and model.config.seen_class_names == SEEN
    assert model.class_weights.shape == (5, model.encoder.embed_dim)
    assert set(info["stage_seconds"]) == {"simulator", "flpt", "generator", "classifier"}
    assert 0 < info["virtual_features"]["trusted"] <= info["virtual_features"]["drawn"] == 60
    model.save_pretrained(tmp_path)
    reloaded = hf_zsl.modeling.modeling_dfzsl.DFZSLModel.from_pretrained(tmp_path)
    torch.testing.assert_close(reloaded.class_weights, model.class_weights.cpu())


def test_data_free_fit_is_reproducible_and_learns_the_context(tiny_base):
    first = hf_zsl.build("dfzsl", tiny_base)
    second = hf_zsl.build("dfzsl", tiny_base)
    initial_context = first.context.detach().clone()
    dfzsl.fit_data_free(first, server_for(first), NEW, tiny_settings(seed=3))
    dfzsl.fit_data_free(second, server_for(second), NEW, tiny_settings(seed=3))
    torch.testing.assert_close(first.class_weights, second.class_weights)
    torch.testing.assert_close(first.context, second.context)
    assert not torch.equal(first.context.cpu(), initial_context)
    assert torch.count_nonzero(first.residual()) > 0


def test_bad_input_to_a_fitted_model_is_refused_before_it_changes(tiny_base):
    model = hf_zsl.build("dfzsl", tiny_base)
    dfzsl.fit_data_free(model, server_for(model), NEW, tiny_settings())
    state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    names = list(model.config.class_names)
    server = server_for(model)
    cases = [
        (server, "cat", TypeError, "not the string 'cat'"),
        (server, ["cat", SEEN[0].capitalize()], ValueError, "tokenize identically"),
        (server, ["cat", "cat"], ValueError, "tokenize identically"),
        (server, ["cat", ""], ValueError, "empty"),
        (dfzsl.ServerClassifier(SEEN, torch.ones(len(SEEN), 7)), NEW, ValueError, "7-d; this model's CLIP features are"),
    ]
    for server_, new, error, message in cases:
        with pytest.raises(error, match=message):
            dfzsl.fit_data_free(model, server_, new, tiny_settings())
        assert model.config.class_names == names
        for name, tensor in model.state_dict().items():
            torch.testing.assert_close(tensor, state[name], msg=name)


def test_new_classes_must_be_new(tiny_base):
    model = hf_zsl.build("dfzsl", tiny_base)
    with pytest.raises(ValueError, match="disjoint"):
        dfzsl.fit_data_free(model, server_for(model), ["cat", SEEN[0]], tiny_settings())
    with pytest.raises(ValueError, match="non-empty"):
        dfzsl.fit_data_free(model, server_for(model), [], tiny_settings())
    with pytest.raises(ValueError, match="gzsl or base2new"):
        dfzsl.fit_data_free(model, server_for(model), NEW, tiny_settings(), protocol="fewshot")


def tiny_gzsl(images_per_class: int = 6) -> GZSLProtocol:
    """Noisy single-colour images of five classes, two of them unseen."""
    rng = np.random.default_rng(0)
    classes = SEEN + NEW
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=classes)})

    def split():
        def image(c: int) -> Image.Image:  # a class colour under noise, so that class means differ
            pixels = np.asarray(COLOURS[c]) + rng.integers(-40, 40, (32, 32, 3))
            return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))

        rows = [(c, image(c)) for c in range(5) for _ in range(images_per_class)]
        return datasets.Dataset.from_dict({"image": [r[1] for r in rows], "label": [r[0] for r in rows]}, features=features)

    data = datasets.DatasetDict(train=split(), validation=split(), test=split())
    return GZSLProtocol(data, NEW)


@pytest.mark.parametrize("kind", dfzsl.SERVERS)
def test_fit_trains_the_server_on_seen_images_then_runs_data_free(tiny_base, monkeypatch, kind):
    protocol = tiny_gzsl()
    probe_data, servers = [], []
    probe_fit, data_free = linear_probe.fit, dfzsl.fit_data_free

    def spy_probe(probe, view, *args):
        names = view.train.features["label"].names
        probe_data.append((list(view.train_class_names), sorted({names[i] for i in view.train["label"]})))
        return probe_fit(probe, view, *args)

    def spy_data_free(model, server, *args, **kwargs):
        servers.append(server)
        return data_free(model, server, *args, **kwargs)

    monkeypatch.setattr(linear_probe, "fit", spy_probe)
    monkeypatch.setattr(fitting, "fit_data_free", spy_data_free)
    model = hf_zsl.build("dfzsl", tiny_base)
    info = dfzsl.fit(model, protocol.training_view(), dataclasses.replace(tiny_settings(), server=kind))
    assert info["server"]["server"] == kind and 0.0 <= info["server"]["val_accuracy"] <= 1.0
    (server,) = servers
    assert server.class_names == SEEN and torch.allclose(server.weights.norm(dim=1), torch.ones(len(SEEN)))
    if kind == "linear_probe":
        assert probe_data == [(SEEN, sorted(SEEN))] * 2  # the server's two probes (zero / text initialisation)
    else:
        assert probe_data == []
    if kind == "class_means":
        train = protocol.training_view().train
        features = image_features(model, train, progress=False)
        labels = torch.tensor(train["label"])
        means = torch.stack([features[labels == c].mean(0) for c in range(len(SEEN))])
        torch.testing.assert_close(server.weights, F.normalize(means, dim=1), atol=1e-5, rtol=0)
    assert {"server", "simulator", "flpt", "generator", "classifier"} == set(info["stage_seconds"])
    assert info["classifier"]["selection_metric"] == "gzsl" and set(info["classifier"]["held_out"]) == {"seen", "unseen", "harmonic"}
    record = hf_zsl.evaluation.evaluate_protocol(model, protocol)
    assert set(record) >= {"seen", "unseen", "harmonic", "zsl_unseen"}


def test_base_to_new_fit_chooses_its_epoch_by_the_base_to_new_score(tiny_base):
    protocol = hf_zsl.protocols.BaseToNewProtocol(tiny_gzsl().data)
    model = hf_zsl.build("dfzsl", tiny_base)
    info = dfzsl.fit(model, protocol.training_view(), tiny_settings())
    chosen = info["classifier"]
    assert chosen["selection_metric"] == "base2new" and set(chosen["held_out"]) == {"base", "new", "harmonic"}
    harmonic = [row["harmonic"] for row in chosen["history"]]
    assert chosen["epoch"] == 1 + harmonic.index(max(harmonic)) and set(chosen["history"][0]) >= {"base", "new"}
    assert model.config.seen_class_names == protocol.base_classes
    assert set(hf_zsl.evaluation.evaluate_protocol(model, protocol)) >= {"base", "new", "harmonic"}


def test_logistic_regression_server_is_the_penalised_optimum():
    """At the returned rows the gradient of Σ CE(Wx, y) + ||W||²/(2c) vanishes (scikit-learn's C = c)."""
    generator = torch.Generator().manual_seed(0)
    means = F.normalize(torch.randn(4, 16, generator=generator), dim=1)
    labels = torch.arange(4).repeat_interleave(30)
    features = F.normalize(means[labels] + 0.3 * torch.randn(120, 16, generator=generator), dim=1)
    weights = dfzsl.logistic_regression_weights(LabelledFeatures(features, labels, list("abcd")), 4, c=0.316)
    w = weights.double().requires_grad_(True)
    objective = F.cross_entropy(features.double() @ w.T, labels, reduction="sum") + w.pow(2).sum() / (2 * 0.316)
    (gradient,) = torch.autograd.grad(objective, w)
    assert gradient.abs().max() < 1e-4
    assert (F.normalize(weights, dim=1) * means).sum(1).min() > 0.5  # each row points to its class


def test_unknown_server_is_refused():
    with pytest.raises(ValueError, match="class_means"):
        dfzsl.DFZSLSettings(server="svm")


def test_fit_refuses_protocols_without_new_classes(tiny_base):
    protocol = hf_zsl.protocols.FewShotProtocol(tiny_gzsl().data, k=2)
    with pytest.raises(ValueError, match="gzsl or base2new"):
        dfzsl.fit(hf_zsl.build("dfzsl", tiny_base), protocol.training_view(), tiny_settings())


def test_settings_are_independent_copies():
    first, second = dfzsl.DFZSLSettings(), dfzsl.DFZSLSettings()
    assert first.flpt is not second.flpt and dataclasses.asdict(first) == dataclasses.asdict(second)


def test_a_fit_that_fails_part_way_leaves_the_fitted_model_unchanged(tiny_base, monkeypatch):
    model = hf_zsl.build("dfzsl", tiny_base)
    dfzsl.fit_data_free(model, server_for(model), NEW, tiny_settings())
    state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    names, seen = list(model.config.class_names), list(model.config.seen_class_names)

    def failing_generator(*args, **kwargs):
        raise ValueError("stage 3 failed")

    monkeypatch.setattr(fitting, "train_generator", failing_generator)
    with pytest.raises(ValueError, match="stage 3 failed"):  # after the classifier was cleared and FLPT trained
        dfzsl.fit_data_free(model, server_for(model), ["zebra"], tiny_settings(seed=5))
    assert (model.config.class_names, model.config.seen_class_names) == (names, seen)
    assert model.state_dict().keys() == state.keys()
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, state[name], msg=name)
