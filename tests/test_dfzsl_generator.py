"""DFZSL's conditional feature generator (TF-VAEGAN) and its logit-adjusted cosine classifier, on a toy problem.

Toy problem: 8 classes in d = 16 whose class means span a 5-d subspace; features are noisy unit vectors
around the means, and each class's condition is a fixed linear function of its 5-d code (12-d,
normalised), so the conditions of the 2 held-out classes determine where their features lie.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from hf_zsl.methods.dfzsl.classifier import (
    ClassifierSettings,
    held_out_scores,
    logit_adjustment,
    predict,
    train_logit_adjusted_classifier,
)
from hf_zsl.methods.dfzsl.generator import (
    GeneratorSettings,
    synthesise,
    train_generator,
)
from hf_zsl.methods.dfzsl.generator_networks import adapt_gp_weight, weighted_l1

CLASSES, DIM, CONDITION_DIM, RANK = 8, 16, 12, 5
SEEN, UNSEEN = list(range(6)), [6, 7]
# The reference's learning rate (3e-5) needs far more steps than a unit test affords.
FAST = GeneratorSettings(epochs=20, learning_rate=1e-3, seed=0)


pytestmark = pytest.mark.usefixtures("one_thread")


def _samples(means: torch.Tensor, per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` noisy unit vectors around each mean: ``(features (C·per_class, d), labels)``."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(len(means)).repeat_interleave(per_class)
    return F.normalize(means[labels] + 0.15 * torch.randn(len(labels), DIM, generator=g), dim=1), labels


@pytest.fixture(scope="module")
def toy():
    """``(means (8, 16), conditions (8, 12), features (480, 16), labels (480,))``, all rows unit."""
    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(DIM, RANK, generator=g))[0]
    codes = torch.randn(CLASSES, RANK, generator=g)
    means = F.normalize(codes @ basis.T, dim=1)
    conditions = F.normalize(codes @ torch.randn(RANK, CONDITION_DIM, generator=g), dim=1)
    return means, conditions, *_samples(means, per_class=60, seed=1)


@pytest.fixture(scope="module")
def trained(toy):
    _, conditions, features, labels = toy
    seen = labels < len(SEEN)
    return train_generator(features[seen], labels[seen], conditions[SEEN], FAST)


def test_synthetic_unseen_features_lie_nearest_their_own_class(toy, trained):
    means, conditions, _, _ = toy
    features, labels = synthesise(trained, conditions[UNSEEN], per_class=200, seed=1)
    assert features.shape == (2 * 200, DIM) and labels.tolist() == [0] * 200 + [1] * 200
    for index, cls in enumerate(UNSEEN):
        mean_cosine = (features[labels == index] @ means.T).mean(0)
        others = torch.cat([mean_cosine[:cls], mean_cosine[cls + 1 :]])
        assert mean_cosine[cls] > others.max(), (cls, mean_cosine)


def test_generator_outputs_unit_vectors_and_records_training(trained, toy):
    features, _ = synthesise(trained, toy[1], per_class=5)
    assert torch.allclose(features.norm(dim=1), torch.ones(len(features)), atol=1e-5)
    assert [row["epoch"] for row in trained.history] == list(range(1, FAST.epochs + 1))
    assert trained.history[-1]["vae"] < trained.history[0]["vae"]
    assert trained.train_seconds > 0


def test_default_hidden_size_is_twice_the_feature_dim_capped_at_1024():
    assert GeneratorSettings().hidden_for(16) == 32
    assert GeneratorSettings().hidden_for(512) == 1024
    assert GeneratorSettings().hidden_for(768) == 1024
    assert GeneratorSettings(hidden_size=64).hidden_for(512) == 64


def test_training_and_synthesis_are_reproducible_and_leave_global_rng_alone(toy):
    _, conditions, features, labels = toy
    settings = GeneratorSettings(epochs=1, hidden_size=32, seed=3)
    state = torch.random.get_rng_state()
    first = train_generator(features, labels, conditions, settings)
    assert torch.equal(torch.random.get_rng_state(), state)
    second = train_generator(features, labels, conditions, settings)
    for name, tensor in first.state_dict().items():
        assert torch.equal(tensor, second.state_dict()[name]), name
    assert torch.equal(synthesise(first, conditions, 4, seed=5)[0], synthesise(second, conditions, 4, seed=5)[0])
    other = train_generator(features, labels, conditions, GeneratorSettings(epochs=1, hidden_size=32, seed=4))
    assert not torch.equal(other.generator.fc1.weight, first.generator.fc1.weight)


def test_feedback_is_optional(toy):
    _, conditions, features, labels = toy
    model = train_generator(features, labels, conditions, GeneratorSettings(epochs=1, hidden_size=32, feedback=False))
    assert model.feedback is None
    assert synthesise(model, conditions, 3)[0].shape == (CLASSES * 3, DIM)


def test_adaptive_gradient_penalty_weight():
    assert adapt_gp_weight(10.0, 1.2) == pytest.approx(11.0)
    assert adapt_gp_weight(10.0, 0.5) == pytest.approx(10.0 / 1.1)
    assert adapt_gp_weight(10.0, 1.02) == 10.0


def test_weighted_l1_weighs_each_error_by_its_share_of_the_norm():
    # e = (3, 4), ||e|| = 5: (9/5)·3 + (16/5)·4 = 91/5; second row e = 0.
    prediction = torch.tensor([[3.0, 4.0], [1.0, 1.0]])
    target = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    assert weighted_l1(prediction, target).item() == pytest.approx(91 / 5 / 2)


def test_logit_adjustment_is_the_log_class_and_group_priors():
    labels = torch.tensor([0, 0, 0, 1, 3, 3])  # seen {0, 1}: 3 and 1 samples; unseen {2, 3}
    expected = [math.log(0.75 * 0.5), math.log(0.25 * 0.5), math.log(0.5 * 0.5), math.log(0.5 * 0.5)]
    assert logit_adjustment(labels, [0, 1], [2, 3], 4).tolist() == pytest.approx(expected)
    skewed = [math.log(0.75 * 0.8), math.log(0.25 * 0.8), math.log(0.5 * 0.2), math.log(0.5 * 0.2)]
    assert logit_adjustment(labels, [0, 1], [2, 3], 4, seen_prior=0.8).tolist() == pytest.approx(skewed)


def test_classifier_on_seen_and_synthetic_features_beats_its_initial_weights(toy, trained):
    means, conditions, features, labels = toy
    seen = labels < len(SEEN)
    synthetic, synthetic_labels = synthesise(trained, conditions[UNSEEN], per_class=200, seed=2)
    train_x = torch.cat([features[seen], synthetic])
    train_y = torch.cat([labels[seen], synthetic_labels + len(SEEN)])
    g = torch.Generator().manual_seed(7)
    initial = F.normalize(means + 0.6 * torch.randn(CLASSES, DIM, generator=g), dim=1)
    settings = ClassifierSettings(learning_rate=1e-2, epochs=30)
    weights, info = train_logit_adjusted_classifier(initial, train_x, train_y, SEEN, UNSEEN, settings)
    assert weights.shape == (CLASSES, DIM)
    assert info["epoch"] == 30 and info["selected_on"] == "last_epoch" and info["held_out"] is None

    test_x, test_y = _samples(means, per_class=100, seed=8)  # fresh samples of the same classes
    before = held_out_scores(initial, test_x, test_y, torch.tensor(SEEN), torch.tensor(UNSEEN))
    after = held_out_scores(weights, test_x, test_y, torch.tensor(SEEN), torch.tensor(UNSEEN))
    assert after["harmonic"] > before["harmonic"] + 0.05, (before, after)


def test_selection_keeps_the_best_held_out_epoch_not_the_last(toy):
    # Training labels swap classes 0 <-> 1 and 6 <-> 7, held-out labels are right: training from the true
    # means makes every epoch worse on held-out data, so the kept epoch must be an early one.
    means, _, features, labels = toy
    swap = torch.tensor([1, 0, 2, 3, 4, 5, 7, 6])
    held_x, held_y = _samples(means, per_class=30, seed=9)
    settings = ClassifierSettings(learning_rate=2e-2, epochs=15, batch_size=128)
    weights, info = train_logit_adjusted_classifier(
        means, features, swap[labels], SEEN, UNSEEN, settings, selection=(held_x, held_y)
    )
    harmonic = [row["harmonic"] for row in info["history"]]
    assert info["selected_on"] == "held_out"
    assert info["epoch"] == 1 + harmonic.index(max(harmonic))
    assert harmonic[-1] < max(harmonic) and info["epoch"] < settings.epochs
    kept = held_out_scores(weights, held_x, held_y, torch.tensor(SEEN), torch.tensor(UNSEEN))
    assert kept == pytest.approx(info["held_out"])
    assert torch.equal(predict(held_x, weights), predict(held_x, weights * 3.0))


def test_base_to_new_scores_predict_each_group_among_its_own_classes():
    # Class 2 (unseen) sits next to class 0 (seen): over all classes its sample is taken for class 0,
    # among the unseen classes it is right.
    weights = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.9, 0.1, 0.0], [0.0, 0.0, 1.0]])
    features = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.05, 0.0], [0.0, 0.0, 1.0]])
    labels, seen, unseen = torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1]), torch.tensor([2, 3])
    assert held_out_scores(weights, features, labels, seen, unseen) == {"seen": 1.0, "unseen": 0.5, "harmonic": pytest.approx(2 / 3)}
    assert held_out_scores(weights, features, labels, seen, unseen, "base2new") == {"base": 1.0, "new": 1.0, "harmonic": 1.0}
    with pytest.raises(ValueError, match="base2new"):
        held_out_scores(weights, features, labels, seen, unseen, "top5")


def test_selection_by_the_base_to_new_score(toy):
    means, _, features, labels = toy
    held_x, held_y = _samples(means, per_class=30, seed=9)
    settings = ClassifierSettings(learning_rate=2e-2, epochs=6, batch_size=128)
    weights, info = train_logit_adjusted_classifier(
        means, features, labels, SEEN, UNSEEN, settings, selection=(held_x, held_y), selection_metric="base2new"
    )
    harmonic = [row["harmonic"] for row in info["history"]]
    assert info["selection_metric"] == "base2new" and set(info["held_out"]) == {"base", "new", "harmonic"}
    assert info["epoch"] == 1 + harmonic.index(max(harmonic))
    assert held_out_scores(weights, held_x, held_y, torch.tensor(SEEN), torch.tensor(UNSEEN), "base2new") == pytest.approx(
        info["held_out"]
    )
    with pytest.raises(ValueError, match="selection metric"):
        train_logit_adjusted_classifier(means, features, labels, SEEN, UNSEEN, settings, selection_metric="top5")


def test_invalid_generator_inputs_raise(toy):
    _, conditions, features, labels = toy
    with pytest.raises(ValueError, match="one per feature"):
        train_generator(features, labels[:-1], conditions)
    with pytest.raises(ValueError, match=r"must lie in \[0, 8\)"):
        train_generator(features, labels + 1, conditions)
    with pytest.raises(ValueError, match="L2-normalised"):
        train_generator(2 * features, labels, conditions)
    with pytest.raises(ValueError, match="integer class indices"):
        train_generator(features, labels.float(), conditions)
    model = train_generator(features[:64], labels[:64], conditions, GeneratorSettings(epochs=0, hidden_size=8))
    with pytest.raises(ValueError, match="12 columns"):
        synthesise(model, conditions[:, :6], 2)
    with pytest.raises(ValueError, match="per_class"):
        synthesise(model, conditions, 0)


def test_invalid_classifier_inputs_raise(toy):
    means, _, features, labels = toy
    with pytest.raises(ValueError, match="`unseen_ids` must be a non-empty"):
        train_logit_adjusted_classifier(means, features, labels, list(range(8)), [])
    with pytest.raises(ValueError, match="overlap"):
        train_logit_adjusted_classifier(means, features, labels, list(range(7)), [6, 7])
    with pytest.raises(ValueError, match=r"classes \[7\] are neither"):
        train_logit_adjusted_classifier(means, features, labels, SEEN, [6])
    with pytest.raises(ValueError, match="one per feature"):
        train_logit_adjusted_classifier(means, features, labels[1:], SEEN, UNSEEN)
    with pytest.raises(ValueError, match=r"must lie in \[0, 8\)"):
        train_logit_adjusted_classifier(means, features, labels + 1, SEEN, UNSEEN)
    with pytest.raises(ValueError, match=r"\(N, 16\)"):
        train_logit_adjusted_classifier(means, features[:, :8], labels, SEEN, UNSEEN)
    seen_only = labels < 6
    with pytest.raises(ValueError, match="no unseen-class sample"):
        train_logit_adjusted_classifier(
            means, features, labels, SEEN, UNSEEN, selection=(features[seen_only], labels[seen_only])
        )
    with pytest.raises(ValueError, match=r"seen classes \[5\] have no training sample"):
        logit_adjustment(labels[labels != 5], SEEN, UNSEEN, CLASSES)
    with pytest.raises(ValueError, match="seen_prior"):
        ClassifierSettings(seen_prior=1.0)
