"""What makes Tip-Adapter(-F) that method: the cache formula, its zero-shot limits, the validated
(alpha, beta), augmented-view keys, and -F training nothing but the keys."""

import datasets
import pytest
import torch
import torch.nn.functional as F
from test_linear_probe import colour_data

import hf_zsl
from hf_zsl.features import image_features
from hf_zsl.methods import tip_adapter
from hf_zsl.protocols import FewShotProtocol
from hf_zsl.training import FitSettings, LabelledFeatures, accuracy_on_features, train_on_features

CLASSES = ["red circle", "blue square"]


def fill_cache(model) -> None:
    """A stand-in for fitting (used by the shared matrix): four seeded random keys, two per class."""
    generator = torch.Generator().manual_seed(0)
    keys = torch.randn(4, model.encoder.embed_dim, generator=generator)
    model.set_cache(keys, torch.tensor([0, 1, 0, 1]))
    model.config.alpha, model.config.beta = 2.0, 3.0


def unit(*shape: int, seed: int) -> torch.Tensor:
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


def scores(model, labels, image_embeds) -> torch.Tensor:
    text = model.tokenizer(labels, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**text, image_embeds=image_embeds).logits_per_image


@pytest.fixture
def models(tiny_base):
    return hf_zsl.build("tip_adapter", tiny_base, class_names=CLASSES), hf_zsl.build("zeroshot", tiny_base)


def test_logits_follow_the_formula(models):
    tip, zeroshot = models
    keys, images = unit(5, 32, seed=1), unit(3, 32, seed=2)
    tip.set_cache(keys * 3, torch.tensor([1, 0, 1, 1, 0]))  # stored normalised
    tip.config.alpha, tip.config.beta = 1.7, 5.5
    values = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    expected = scores(zeroshot, CLASSES, images) + 1.7 * torch.exp(-5.5 * (1 - images @ keys.t())) @ values
    torch.testing.assert_close(scores(tip, CLASSES, images), expected)
    # Label order at call time does not matter: each label gets its own class's cache column.
    torch.testing.assert_close(scores(tip, CLASSES[::-1], images), expected.flip(1))


def test_alpha_zero_or_beta_zero_reduce_to_zero_shot(models):
    tip, zeroshot = models
    tip.set_cache(unit(6, 32, seed=3), torch.tensor([0, 1, 0, 1, 0, 1]))  # 3 shots per class
    images = unit(4, 32, seed=4)
    reference = scores(zeroshot, CLASSES, images)
    tip.config.alpha, tip.config.beta = 0.0, 4.0
    torch.testing.assert_close(scores(tip, CLASSES, images), reference)
    # beta -> 0: every entry has affinity 1, so each class gains alpha * shots, the same for every class.
    tip.config.alpha, tip.config.beta = 2.5, 0.0
    torch.testing.assert_close(scores(tip, CLASSES, images), reference + 2.5 * 3)
    torch.testing.assert_close(scores(tip, CLASSES, images).softmax(-1), reference.softmax(-1))


def test_labels_not_trained_score_zero_shot(models):
    tip, zeroshot = models
    fill_cache(tip)
    labels, images = ["cat", "red circle", "green star"], unit(3, 32, seed=5)
    ours, reference = scores(tip, labels, images), scores(zeroshot, labels, images)
    torch.testing.assert_close(ours[:, [0, 2]], reference[:, [0, 2]])
    assert not torch.allclose(ours[:, 1], reference[:, 1])


def test_alpha_and_beta_are_chosen_on_validation(models, monkeypatch):
    tip, zeroshot = models
    monkeypatch.setattr(tip_adapter, "ALPHA_RATIOS", (0.1, 1.0, 1000.0))  # wide enough to overrule zero-shot
    images = unit(8, 32, seed=6)
    zero_shot_choice = scores(zeroshot, CLASSES, images).argmax(-1)
    tip.set_cache(images, 1 - zero_shot_choice)  # the cache disagrees with zero-shot on every image
    scale = float(tip.logit_scale) / 100
    # Validation agrees with the cache: the largest alpha wins, and every image is right.
    chosen = tip_adapter.choose_alpha_beta(tip, LabelledFeatures(images, 1 - zero_shot_choice, CLASSES))
    assert chosen["val_accuracy"] == 1.0 and chosen["alpha"] == pytest.approx(max(tip_adapter.ALPHA_RATIOS) * scale)
    assert (tip.config.alpha, tip.config.beta) == (chosen["alpha"], chosen["beta"])
    # Validation agrees with zero-shot: the smallest alpha, which keeps every zero-shot answer.
    chosen = tip_adapter.choose_alpha_beta(tip, LabelledFeatures(images, zero_shot_choice, CLASSES))
    assert chosen["val_accuracy"] == 1.0 and chosen["alpha"] == pytest.approx(min(tip_adapter.ALPHA_RATIOS) * scale)


def protocol() -> FewShotProtocol:
    data = datasets.DatasetDict({"train": colour_data(0), "validation": colour_data(1), "test": colour_data(2)})
    return FewShotProtocol(data, k=4, seed=0, val_policy="fewshot_min(k,4)")


def test_keys_are_the_mean_of_augmented_views(tiny_base):
    task = protocol()
    model = hf_zsl.build("tip_adapter", tiny_base, class_names=task.train_class_names, augment_views=3)
    info = tip_adapter.fit(model, task.training_view())
    views = image_features(model, task.train, progress=False, augment_views=3, augment_seed=0)
    assert views.shape == (3, 12, 32)
    torch.testing.assert_close(model.cache_keys, F.normalize(views.mean(0), dim=-1))
    assert torch.equal(model.cache_labels, torch.tensor(task.train["label"]))
    assert model.config.num_cache_entries == 12 and not any(p.requires_grad for p in model.parameters())
    val = LabelledFeatures.of(model, task.val, task.train_class_names)
    assert info["val_accuracy"] == accuracy_on_features(model, val) > 0.9
    assert set(info) == {"alpha", "beta", "val_accuracy", "train_seconds"}


def test_fine_tuning_moves_only_the_keys(tiny_base):
    model = hf_zsl.build("tip_adapter_f", tiny_base, class_names=CLASSES)
    fill_cache(model)
    assert {name for name, p in model.named_parameters() if p.requires_grad} == {"cache_keys"}
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    features = unit(16, 32, seed=7)
    train = LabelledFeatures(features, torch.arange(16) % 2, CLASSES)
    train_on_features(model, train, FitSettings(epochs=3, batch_size=8, learning_rate=1e-2))
    after = model.state_dict()
    changed = {name for name in before if not torch.equal(before[name], after[name].cpu())}
    assert changed == {"cache_keys"}


def test_fine_tuned_fit_keeps_the_better_keys_on_validation(tiny_base):
    task = protocol()
    model = hf_zsl.build("tip_adapter_f", tiny_base, class_names=task.train_class_names, augment_views=2)
    settings = FitSettings(epochs=5, batch_size=8, learning_rate=1e-2)
    info = tip_adapter.fit(model, task.training_view(), settings)
    assert info["val_accuracy"] >= info["val_accuracy_training_free"]
    assert isinstance(model.cache_keys, torch.nn.Parameter)
    val = LabelledFeatures.of(model, task.val, task.train_class_names)
    assert accuracy_on_features(model, val) == info["val_accuracy"]
    views = image_features(model, task.train, progress=False, augment_views=2, augment_seed=0)
    training_free = F.normalize(views.mean(0), dim=-1)
    assert info["keys_fine_tuned"] == (not torch.equal(model.cache_keys.detach().cpu(), training_free))


def test_fit_refuses_mismatched_classes(tiny_base):
    model = hf_zsl.build("tip_adapter", tiny_base, class_names=CLASSES)
    with pytest.raises(ValueError, match="class_names=view.train_class_names"):
        tip_adapter.fit(model, protocol().training_view())
