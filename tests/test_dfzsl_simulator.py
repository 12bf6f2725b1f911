"""DFZSL's virtual domain modelling on a toy server: 6 random class directions in d = 32."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from hf_zsl.methods.dfzsl.simulator import SimulatorResult, SimulatorSettings, fit_simulator, simulator_concentration, virtual_features
from hf_zsl.vmf import VonMisesFisher, six_sigma_concentration

SETTINGS = SimulatorSettings(steps=300)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def toy() -> tuple[torch.Tensor, torch.Tensor]:
    """`(6, 32)` server weights (random, norm 3) and prototypes: their noisy copies (cos ≈ 0.5-0.7)."""
    generator = torch.Generator().manual_seed(0)
    weights = F.normalize(torch.randn(6, 32, generator=generator), dim=-1)
    prototypes = F.normalize(weights + 0.25 * torch.randn(6, 32, generator=generator), dim=-1)
    return 3 * weights, 5 * prototypes


@pytest.fixture(scope="module")
def fitted(one_thread, toy) -> SimulatorResult:
    return fit_simulator(*toy, SETTINGS)


def mean_cosine(mu: torch.Tensor, weights: torch.Tensor) -> float:
    return float(F.cosine_similarity(mu, weights, dim=-1).mean())


def test_fitting_aligns_the_directions_with_the_server(toy, fitted):
    weights, prototypes = toy
    assert fitted.alignment[0] == pytest.approx(mean_cosine(prototypes, weights), abs=1e-6)
    assert fitted.alignment[fitted.best_step] == max(fitted.alignment) > fitted.alignment[0] + 0.3
    assert mean_cosine(fitted.mu, weights) == pytest.approx(fitted.alignment[fitted.best_step], abs=1e-6)
    torch.testing.assert_close(fitted.mu.norm(dim=-1), torch.ones(6))
    assert len(fitted.losses) == SETTINGS.steps and len(fitted.alignment) == SETTINGS.steps + 1
    assert sum(fitted.losses[-30:]) < 0.01 * sum(fitted.losses[:30])


def test_concentration_is_the_softplus_of_the_scaled_six_sigma_rule(toy, fitted):
    _, prototypes = toy
    _, shared = six_sigma_concentration(prototypes)
    assert fitted.kappa == pytest.approx(float(F.softplus(torch.tensor(shared, dtype=torch.float64))))
    assert simulator_concentration(prototypes, 0.02) == pytest.approx(float(F.softplus(torch.tensor(0.02 * shared, dtype=torch.float64))))


def test_classifier_initialisation_starts_on_the_server_weights(toy):
    weights, prototypes = toy
    result = fit_simulator(weights, prototypes, dataclasses.replace(SETTINGS, steps=20, mu_init="classifier"))
    assert result.alignment[0] == pytest.approx(1.0, abs=1e-6)
    assert result.best_step == 0
    torch.testing.assert_close(result.mu, F.normalize(weights, dim=-1))


def test_virtual_features_are_unit_and_trusted(toy, fitted):
    weights, _ = toy
    features, labels = virtual_features(fitted, weights, per_class=200, seed=1)
    assert features.shape == (len(labels), 32) and labels.dtype == torch.int64
    torch.testing.assert_close(features.norm(dim=-1), torch.ones(len(labels)))
    assert (features @ weights.T).argmax(-1).eq(labels).all()
    assert len(labels) >= 0.85 * 6 * 200
    assert labels.bincount(minlength=6).min() > 0


def test_trusted_filtering_drops_exactly_the_misclassified_draws(toy):
    """At low κ many draws cross into a neighbour's region; exactly the correctly classified stay."""
    weights, _ = toy
    mu = F.normalize(weights, dim=-1)
    result = SimulatorResult(mu=mu, kappa=8.0, losses=[], alignment=[1.0], best_step=0)
    features, labels = virtual_features(result, weights, per_class=100, seed=2)
    draws = VonMisesFisher(mu, 8.0).sample((100,), torch.Generator().manual_seed(2)).transpose(0, 1).reshape(-1, 32)
    all_labels = torch.arange(6).repeat_interleave(100)
    trusted = (draws @ weights.T).argmax(-1) == all_labels
    assert 0 < trusted.sum() < 0.9 * len(trusted)
    torch.testing.assert_close(features, draws[trusted], atol=0, rtol=0)
    torch.testing.assert_close(labels, all_labels[trusted], atol=0, rtol=0)


def test_a_class_the_server_never_recognises_raises(toy):
    weights, _ = toy
    mu = F.normalize(weights, dim=-1).clone()
    mu[0] = mu[1]  # class 0's vMF sits on class 1's weight: every draw is classified as 1
    result = SimulatorResult(mu=mu, kappa=1e4, losses=[], alignment=[0.0], best_step=0)
    with pytest.raises(ValueError, match=r"Classes \[0\] keep no trusted"):
        virtual_features(result, weights, per_class=20)


def test_seeded_runs_are_reproducible(toy):
    weights, prototypes = toy
    settings = dataclasses.replace(SETTINGS, steps=25)
    first, second = fit_simulator(weights, prototypes, settings), fit_simulator(weights, prototypes, settings)
    torch.testing.assert_close(first.mu, second.mu, atol=0, rtol=0)
    assert first.losses == second.losses
    other = fit_simulator(weights, prototypes, dataclasses.replace(settings, seed=1))
    assert other.losses != first.losses
    a, b = virtual_features(first, weights, 50, seed=3), virtual_features(first, weights, 50, seed=3)
    torch.testing.assert_close(a, b, atol=0, rtol=0)


@pytest.mark.parametrize(
    "field", [{"mu_init": "weights"}, {"samples_per_class_per_step": 0}, {"steps": -1}, {"theta": 0.0}, {"temperature": -1.0}, {"virtual_per_class": 0}]
)
def test_invalid_settings_raise(field):
    with pytest.raises(ValueError):
        SimulatorSettings(**field)


def test_mismatched_inputs_raise(toy, fitted):
    weights, prototypes = toy
    with pytest.raises(ValueError):
        fit_simulator(weights, prototypes[:5], SETTINGS)
    with pytest.raises(ValueError):
        fit_simulator(weights[:1], prototypes[:1], SETTINGS)
    with pytest.raises(ValueError):
        virtual_features(fitted, weights[:, :16])
