"""The von Mises–Fisher sampler: moments against the closed form, gradients into loc, DFZSL's κ rule.

Statistical checks are seeded (they cannot flake) and their thresholds are set so that a correct
sampler would fail each one with probability ``P_FAIL`` on a fresh seed.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from scipy.special import ive

from hf_zsl.vmf import VonMisesFisher, _bessel_ratio_recurrence, mean_resultant_length, six_sigma_concentration

P_FAIL = 1e-6
Z = stats.norm.isf(P_FAIL / 2)  # two-sided, ≈ 4.9 standard errors
SAMPLES = 20_000
# d = 2 takes the sampler's Gamma(1/2) path (shape < 1), the others Marsaglia–Tsang directly.
CASES = [(2, 1.0), (2, 10.0)] + [(d, kappa) for d in (3, 16, 128, 512) for kappa in (0.5, 5.0, 50.0, 500.0)]


pytestmark = pytest.mark.usefixtures("one_thread")


def random_unit(d: int, seed: int, dtype=torch.float32) -> torch.Tensor:
    return F.normalize(torch.randn(d, generator=torch.Generator().manual_seed(seed), dtype=dtype), dim=0)


@pytest.mark.parametrize("case", range(len(CASES)), ids=[f"d{d}-k{k:g}" for d, k in CASES])
def test_samples_match_the_closed_form_moments(case):
    d, kappa = CASES[case]
    mu = random_unit(d, seed=case)
    x = VonMisesFisher(mu, kappa).rsample((SAMPLES,), generator=torch.Generator().manual_seed(100 + case)).double()
    assert x.shape == (SAMPLES, d)
    torch.testing.assert_close(x.norm(dim=-1), torch.ones(SAMPLES, dtype=torch.float64), atol=1e-5, rtol=0)
    # Mean resultant length: the sample mean of μ·x within Z standard errors of A_d(κ).
    w = x @ mu.double()
    se = w.std().item() / math.sqrt(SAMPLES)
    length = mean_resultant_length(kappa, d)
    assert abs(w.mean().item() - length) <= Z * se
    # Second moment: E[(μ·x)²] = 1 - (d-1) A_d(κ) / κ.
    squares = w.pow(2)
    assert abs(squares.mean().item() - (1 - (d - 1) * length / kappa)) <= Z * squares.std().item() / math.sqrt(SAMPLES)
    # Mean direction μ: each of the d-1 tangent coordinates of the sample mean has variance
    # (1 - E[w²]) / ((d-1) n), so the scaled squared tangent norm is ~ chi²(d-1).
    tangent_mean = x.mean(0) - w.mean() * mu.double()
    statistic = SAMPLES * (d - 1) * tangent_mean.pow(2).sum().item() / (1 - w.pow(2).mean().item())
    assert statistic <= stats.chi2.isf(P_FAIL, d - 1)


def test_mean_resultant_length_matches_known_forms():
    kappa = np.array([1e-3, 0.5, 5.0, 50.0, 500.0])
    # d = 3: A(κ) = coth κ - 1/κ.
    np.testing.assert_allclose(mean_resultant_length(kappa, 3), 1 / np.tanh(kappa) - 1 / kappa, rtol=1e-6)
    # d = 2: I1/I0.
    np.testing.assert_allclose(mean_resultant_length(kappa, 2), ive(1, kappa) / ive(0, kappa), rtol=1e-12)
    # Small κ, large d (the scaled Bessel functions underflow): A ≈ κ/d (1 - κ²/(d(d+2))).
    assert ive(256, 0.5) == 0
    np.testing.assert_allclose(mean_resultant_length(0.5, 512), 0.5 / 512 * (1 - 0.25 / (512 * 514)), rtol=1e-9)
    assert isinstance(mean_resultant_length(5.0, 16), float)


@pytest.mark.parametrize("d", [16, 128, 512])
def test_recurrence_fallback_agrees_with_scaled_bessel(d):
    """Where both work (κ ≳ d/2, so ive does not underflow) up to κ = 10 d, they agree to round-off."""
    kappa = np.array([0.5, 2.0, 10.0]) * d
    np.testing.assert_allclose(_bessel_ratio_recurrence(d / 2, kappa), ive(d / 2, kappa) / ive(d / 2 - 1, kappa), rtol=1e-10)


def test_mean_property_and_batch_shapes():
    loc = F.normalize(torch.randn(4, 3, 16, generator=torch.Generator().manual_seed(0)), dim=-1)
    kappa = torch.tensor([1.0, 10.0, 100.0])
    dist = VonMisesFisher(loc, kappa)
    assert dist.batch_shape == (4, 3) and dist.event_shape == (16,)
    assert dist.rsample((5,), generator=torch.Generator().manual_seed(0)).shape == (5, 4, 3, 16)
    expected = torch.tensor(mean_resultant_length(kappa.double().numpy(), 16), dtype=torch.float32)[:, None] * loc
    torch.testing.assert_close(dist.mean, expected)


def test_seeded_samples_are_reproducible():
    dist = VonMisesFisher(random_unit(32, 0), 20.0)
    first = dist.sample((100,), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, dist.sample((100,), generator=torch.Generator().manual_seed(3)), atol=0, rtol=0)
    assert not torch.equal(first, dist.sample((100,), generator=torch.Generator().manual_seed(4)))


def expected_projection(p: torch.Tensor, v: torch.Tensor, kappa: float, samples: int, seed: int) -> torch.Tensor:
    """Monte Carlo E[x·v], x ~ vMF(p/‖p‖, κ), with the generator reset to ``seed`` (common random numbers)."""
    x = VonMisesFisher(F.normalize(p, dim=0), kappa).rsample((samples,), generator=torch.Generator().manual_seed(seed))
    return (x @ v).mean()


def test_rsample_gradient_matches_finite_differences():
    """The draws of w and v do not depend on μ, so the sampled estimate is a smooth function of p."""
    d, kappa, eps = 8, 5.0, 1e-6
    p = 2 * random_unit(d, 1, torch.float64)
    v = torch.randn(d, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    leaf = p.clone().requires_grad_()
    expected_projection(leaf, v, kappa, 2000, seed=7).backward()
    basis = torch.eye(d, dtype=torch.float64)
    step = [expected_projection(p + eps * e, v, kappa, 2000, 7) - expected_projection(p - eps * e, v, kappa, 2000, 7) for e in basis]
    numeric = torch.stack(step) / (2 * eps)
    torch.testing.assert_close(leaf.grad, numeric, atol=1e-7, rtol=1e-6)


def at_pole(sign: float) -> torch.Tensor:
    mu = torch.zeros(8, dtype=torch.float64)
    mu[0] = sign
    return mu


def on_equator() -> torch.Tensor:
    mu = random_unit(8, 5, torch.float64)
    mu[0] = 0
    return F.normalize(mu, dim=0)


@pytest.mark.parametrize("mu", [random_unit(8, 4, torch.float64), at_pole(1.0), at_pole(-1.0), on_equator()], ids=["random", "e1", "-e1", "mu1=0"])
def test_rsample_gradient_is_unbiased_for_the_analytical_one(mu):
    """d/dp E[x·v] = A_d(κ) (I - μμᵀ) v / ‖p‖ for μ = p/‖p‖: batch gradients within Student-t bounds."""
    d, kappa, batches, per_batch = 8, 5.0, 50, 400
    v = torch.randn(d, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    p = 1.5 * mu
    grads = []
    for batch in range(batches):
        leaf = p.clone().requires_grad_()
        expected_projection(leaf, v, kappa, per_batch, seed=batch).backward()
        grads.append(leaf.grad)
    grads = torch.stack(grads)
    analytical = mean_resultant_length(kappa, d) * (v - mu * (mu @ v)) / 1.5
    se = grads.std(0) / math.sqrt(batches)
    bound = stats.t.isf(P_FAIL / (2 * d), batches - 1) * se + 1e-12
    assert torch.all((grads.mean(0) - analytical).abs() <= bound)


def test_gradients_reach_loc_but_not_concentration():
    loc = torch.nn.Parameter(torch.randn(5, 16))
    kappa = torch.tensor(10.0, requires_grad=True)
    x = VonMisesFisher(F.normalize(loc, dim=-1), kappa).rsample((30,), generator=torch.Generator().manual_seed(0))
    (x * torch.linspace(-1, 1, 16)).sum().backward()
    assert loc.grad is not None and torch.all(torch.isfinite(loc.grad)) and loc.grad.abs().sum() > 0
    assert kappa.grad is None


def test_six_sigma_rule_on_known_angles():
    """Three prototypes in a plane at angles 0, 0.3 and 1.0 rad (norms differ): θ_min = 0.3, 0.3, 0.7."""
    angles = torch.tensor([0.0, 0.3, 1.0], dtype=torch.float64)
    prototypes = torch.zeros(3, 4, dtype=torch.float64)
    prototypes[:, 0], prototypes[:, 1] = torch.cos(angles), torch.sin(angles)
    prototypes = prototypes * torch.tensor([[1.0], [7.5], [0.2]], dtype=torch.float64)
    per_class, shared = six_sigma_concentration(prototypes)
    expected = 36 / torch.tensor([0.3, 0.3, 0.7], dtype=torch.float64) ** 2
    torch.testing.assert_close(per_class, expected)
    assert shared == pytest.approx(400.0)


@pytest.mark.parametrize(
    "prototypes",
    [torch.randn(1, 8), torch.randn(8), torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 0.0], [0.0, 0.0]])],
    ids=["one-class", "not-2d", "duplicate-direction", "zero-prototype"],
)
def test_six_sigma_rule_rejects_degenerate_prototypes(prototypes):
    with pytest.raises(ValueError):
        six_sigma_concentration(prototypes)


@pytest.mark.parametrize(
    ("loc", "kappa"),
    [
        (F.normalize(torch.ones(3, 4), dim=-1), 0.0),
        (F.normalize(torch.ones(3, 4), dim=-1), -1.0),
        (F.normalize(torch.ones(3, 4), dim=-1), float("nan")),
        (F.normalize(torch.ones(3, 4), dim=-1), torch.ones(2)),
        (torch.ones(3, 4), 1.0),
        (torch.ones(3, 1), 1.0),
    ],
    ids=["kappa-zero", "kappa-negative", "kappa-nan", "kappa-shape", "loc-not-unit", "loc-d1"],
)
def test_invalid_parameters_raise(loc, kappa):
    with pytest.raises(ValueError):
        VonMisesFisher(loc, kappa)


@pytest.mark.parametrize(("kappa", "d"), [(0.0, 3), (-2.0, 3), (math.inf, 3), (1.0, 1)])
def test_mean_resultant_length_rejects_invalid_arguments(kappa, d):
    with pytest.raises(ValueError):
        mean_resultant_length(kappa, d)
