"""The von Mises–Fisher distribution on the unit sphere S^{d-1}, with a reparameterised sampler.

Density on unit vectors x in R^d: p(x) ∝ exp(κ μ·x), with mean direction μ (unit) and
concentration κ > 0. DFZSL's data-free stage (:mod:`hf_zsl.methods.dfzsl.simulator`) models each
seen class's image features as such a distribution and learns μ by back-propagating through the
samples, so :meth:`VonMisesFisher.rsample` is differentiable with respect to ``loc``.

Sampling (Wood 1994, "Simulation of the von Mises Fisher distribution"):

1. Draw w = μ·x, whose density on [-1, 1] is ∝ exp(κw) (1 - w²)^{(d-3)/2}, by rejection from a
   Beta((d-1)/2, (d-1)/2) envelope. This part depends on κ and d only, never on μ, and runs in
   float64.
2. Draw a direction v uniformly on the unit sphere of the tangent space orthogonal to e1, and form
   x' = w e1 + sqrt(1 - w²) v, a sample of the vMF centred on e1.
3. Map the centre to μ with a Householder reflection R_a(y) = y - 2 a (a·y) / (a·a), which is
   differentiable in μ and so carries the gradient into ``loc``. The tangent direction is
   uniform, so any orthogonal map taking the centre to μ gives the right law. R_{e1-μ} (e1 -> μ) is
   singular at μ = e1 (a = 0, zero gradient there) and R_{e1+μ} (-e1 -> μ) at μ = -e1, so each
   μ uses the one whose ‖a‖² = 2(1 + |μ1|) ≥ 2: centre e1 when μ1 < 0, centre -e1 when μ1 ≥ 0
   (step 2 then puts -w on the first axis). Neither cancellation nor a singular point remains.

The Beta draws use our own Marsaglia–Tsang gamma sampler so that every random number comes from the
caller's ``torch.Generator`` (``torch.distributions.Beta`` cannot take one).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import ive
from torch.distributions import Distribution, constraints

# Largest allowed | ||loc|| - 1 |: float32 round-off of an L2-normalised vector stays far below it.
UNIT_NORM_TOLERANCE = 1e-4
# Terms of the backward recurrence used where the scaled Bessel functions underflow.
_RECURRENCE_TERMS = 200


class _UnitSphere(constraints.Constraint):
    """Vectors of unit Euclidean norm along the last dimension."""

    event_dim = 1

    def check(self, value: torch.Tensor) -> torch.Tensor:
        return (value.norm(dim=-1) - 1).abs() <= UNIT_NORM_TOLERANCE


unit_sphere = _UnitSphere()


def _bessel_ratio_recurrence(order: float, kappa: np.ndarray) -> np.ndarray:
    """I_order(κ) / I_{order-1}(κ) by the backward recurrence R_n = 1 / (2n/κ + R_{n+1}).

    The recurrence starts ``_RECURRENCE_TERMS`` orders higher from the bound
    R_n ≈ κ / (n + sqrt(n² + κ²)); the ratio is the recurrence's minimal solution, so an error in the
    start shrinks by the factor R_n < 1 at every step. Used where the scaled Bessel functions
    underflow (roughly κ < order² / 1400), where R_n at n ≥ order is far enough below 1 for 200
    steps to reach round-off at any d up to several thousand.
    """
    top = order + _RECURRENCE_TERMS
    ratio = kappa / (top + np.sqrt(top**2 + kappa**2))
    for n in np.arange(top - 1, order - 1, -1.0):
        ratio = 1.0 / (2.0 * n / kappa + ratio)
    return ratio


def mean_resultant_length(kappa, d: int) -> np.ndarray | float:
    """A_d(κ) = E[μ·x] = I_{d/2}(κ) / I_{d/2-1}(κ) for x ~ vMF(μ, κ) on S^{d-1}.

    Computed with exponentially scaled Bessel functions (``scipy.special.ive``: the e^{-κ} factors
    cancel in the ratio), falling back to a backward recurrence where those underflow (large d,
    small κ, e.g. d = 512, κ = 0.5).

    Args:
        kappa: κ > 0, a float or an array of any shape.
        d: ambient dimension (≥ 2).

    Returns:
        A_d(κ) in [0, 1), a float for a scalar κ, else an array of ``kappa``'s shape.
    """
    if d < 2:
        raise ValueError(f"The sphere S^(d-1) needs d >= 2, got d={d}.")
    k = np.asarray(kappa, dtype=np.float64)
    if not np.all(np.isfinite(k) & (k > 0)):
        raise ValueError(f"Concentration must be finite and > 0, got {kappa}.")
    with np.errstate(divide="ignore", invalid="ignore", under="ignore"):
        numerator, denominator = ive(d / 2, k), ive(d / 2 - 1, k)
        ratio = numerator / denominator
    underflow = ~((numerator > 0) & (denominator > 0) & np.isfinite(ratio))
    if np.any(underflow):
        ratio = np.where(underflow, _bessel_ratio_recurrence(d / 2, k), ratio)
    return float(ratio) if ratio.ndim == 0 else ratio


def six_sigma_concentration(prototypes: torch.Tensor) -> tuple[torch.Tensor, float]:
    """DFZSL's concentration rule: each class's vMF should reach its nearest neighbour at 6 "sigmas".

    θ_min(c) = min over c' ≠ c of the angle between t_c and t_c' (prototypes L2-normalised), and
    κ_c = 1 / (θ_min(c) / 6)². The angle is computed as 2·asin(‖t_c - t_c'‖ / 2), exact for small
    angles where arccos of the cosine loses precision.

    Args:
        prototypes: `(C, d)` class prototypes (e.g. CLIP text features), any non-zero norm.

    Returns:
        ``(per_class, shared)``: `(C,)` float64 κ_c, and their maximum, the single κ that DFZSL
        shares across classes.
    """
    if prototypes.ndim != 2 or prototypes.shape[0] < 2:
        raise ValueError(f"The six-sigma rule needs (C >= 2, d) prototypes, got shape {tuple(prototypes.shape)}.")
    t = prototypes.detach().to(torch.float64)
    norms = t.norm(dim=-1)
    if not torch.all(torch.isfinite(norms) & (norms > 0)):
        raise ValueError("Prototypes must be finite and non-zero.")
    chords = torch.cdist(t / norms[:, None], t / norms[:, None])
    chords.fill_diagonal_(math.inf)
    theta_min = 2 * torch.asin((chords.min(dim=1).values / 2).clamp(max=1.0))
    if torch.any(theta_min == 0):
        duplicates = torch.nonzero(theta_min == 0).flatten().tolist()
        raise ValueError(f"Classes {duplicates} have a duplicate prototype direction (angle 0): κ would be infinite.")
    per_class = 1.0 / (theta_min / 6) ** 2
    return per_class, float(per_class.max())


def _standard_gamma(shape: float, count: int, generator: torch.Generator | None, device) -> torch.Tensor:
    """`(count,)` float64 draws of Gamma(shape, 1), Marsaglia–Tsang (2000) rejection, vectorised.

    For shape < 1 it draws Gamma(shape + 1) and multiplies by U^{1/shape}.
    """
    boost = shape < 1
    alpha = shape + 1 if boost else shape
    offset = alpha - 1 / 3
    scale = 1 / math.sqrt(9 * offset)
    out = torch.empty(count, dtype=torch.float64, device=device)
    pending = torch.arange(count, device=device)
    while pending.numel():
        normal = torch.randn(pending.numel(), dtype=torch.float64, device=device, generator=generator)
        uniform = torch.rand(pending.numel(), dtype=torch.float64, device=device, generator=generator)
        cube = (1 + scale * normal) ** 3
        log_cube = torch.log(cube.clamp_min(torch.finfo(torch.float64).tiny))
        accept = (cube > 0) & (torch.log(uniform) < 0.5 * normal**2 + offset - offset * cube + offset * log_cube)
        out[pending[accept]] = offset * cube[accept]
        pending = pending[~accept]
    if boost:
        uniform = torch.rand(count, dtype=torch.float64, device=device, generator=generator)
        out = out * uniform ** (1 / shape)
    return out


def _sample_cosines(kappa: torch.Tensor, d: int, generator: torch.Generator | None) -> torch.Tensor:
    """Wood's rejection sampler for w = μ·x: `(M,)` float64 κ in, `(M,)` float64 w in [-1, 1] out.

    Envelope: w = (1 - (1+b) z) / (1 - (1-b) z), z ~ Beta((d-1)/2, (d-1)/2), with the
    cancellation-free b = (d-1) / (2κ + sqrt(4κ² + (d-1)²)); accept when
    κw + (d-1) log(1 - x0 w) - c ≥ log u, x0 = (1-b)/(1+b), c = κ x0 + (d-1) log(1 - x0²).
    """
    m = d - 1
    b = m / (2 * kappa + torch.sqrt(4 * kappa**2 + m**2))
    x0 = (1 - b) / (1 + b)
    c = kappa * x0 + m * torch.log1p(-(x0**2))
    out = torch.empty_like(kappa)
    pending = torch.arange(kappa.numel(), device=kappa.device)
    while pending.numel():
        n = pending.numel()
        g1 = _standard_gamma(m / 2, n, generator, kappa.device)
        g2 = _standard_gamma(m / 2, n, generator, kappa.device)
        z = g1 / (g1 + g2)
        uniform = torch.rand(n, dtype=torch.float64, device=kappa.device, generator=generator)
        bp, x0p, kp = b[pending], x0[pending], kappa[pending]
        w = (1 - (1 + bp) * z) / (1 - (1 - bp) * z)
        accept = kp * w + m * torch.log1p(-x0p * w) - c[pending] >= torch.log(uniform)
        out[pending[accept]] = w[accept]
        pending = pending[~accept]
    return out.clamp(-1.0, 1.0)


def _reflect_to_loc(loc: torch.Tensor, w: torch.Tensor, tail: torch.Tensor) -> torch.Tensor:
    """Place samples around ``loc``.

    With t = sign(μ1) (t = 1 at μ1 = 0), the sample y = (-t w, sqrt(1 - w²) v) lies around -t e1,
    and the reflection along a = e1 + t μ maps -t e1 to μ; ‖a‖² = 2(1 + |μ1|) never vanishes.

    Args:
        loc: `(*batch, d)` unit mean directions μ.
        w: `(*sample, *batch, 1)` cosines to μ.
        tail: `(*sample, *batch, d-1)` tangent parts sqrt(1 - w²) v, v unit.

    Returns:
        `(*sample, *batch, d)` samples x with μ·x = w.
    """
    t = torch.where(loc[..., :1] >= 0, 1.0, -1.0).to(loc.dtype)
    a = t * loc + torch.nn.functional.pad(torch.ones_like(t), (0, loc.shape[-1] - 1))
    y = torch.cat([-t * w, tail], dim=-1)
    return y - (2 * a / (a * a).sum(-1, keepdim=True)) * (a * y).sum(-1, keepdim=True)


class VonMisesFisher(Distribution):
    """vMF(loc, concentration) on S^{d-1} with a reparameterised :meth:`rsample`.

    Args:
        loc: `(..., d)` mean directions, d ≥ 2. They must already be unit vectors
            (| ‖loc‖ - 1 | ≤ ``UNIT_NORM_TOLERANCE``), else ``ValueError``: normalising silently
            would hide a caller's bug and change the gradient path; callers that learn ``loc``
            should pass ``F.normalize(parameter, dim=-1)``.
        concentration: κ > 0, a float or a tensor broadcastable to ``loc.shape[:-1]``
            (``ValueError`` otherwise).

    Gradients: :meth:`rsample` is differentiable with respect to ``loc`` (Householder path).
    κ is treated as a constant: no gradient reaches ``concentration`` (the implicit
    reparameterisation gradient of Wood's rejection step is not implemented), as DFZSL never
    learns κ.
    """

    arg_constraints = {"loc": unit_sphere, "concentration": constraints.positive}
    support = unit_sphere
    has_rsample = True

    def __init__(self, loc: torch.Tensor, concentration, validate_args: bool | None = None):
        if loc.ndim < 1 or loc.shape[-1] < 2:
            raise ValueError(f"loc must be (..., d) with d >= 2, got shape {tuple(loc.shape)}.")
        if not torch.all(unit_sphere.check(loc.detach())):
            raise ValueError("loc must be unit vectors along the last dimension; pass F.normalize(loc, dim=-1).")
        kappa = torch.as_tensor(concentration, dtype=loc.dtype, device=loc.device)
        if not torch.all(torch.isfinite(kappa) & (kappa > 0)):
            raise ValueError(f"Concentration must be finite and > 0, got {concentration}.")
        try:
            batch_shape = torch.broadcast_shapes(loc.shape[:-1], kappa.shape)
        except RuntimeError as error:
            raise ValueError(f"concentration of shape {tuple(kappa.shape)} does not broadcast to loc's batch shape {tuple(loc.shape[:-1])}.") from error
        self.loc = loc.expand(*batch_shape, loc.shape[-1])
        self.concentration = kappa.detach().expand(batch_shape)
        super().__init__(batch_shape, torch.Size([loc.shape[-1]]), validate_args=validate_args)

    @property
    def dim(self) -> int:
        """d, the ambient dimension (samples lie on S^{d-1})."""
        return self.event_shape[0]

    @property
    def mean(self) -> torch.Tensor:
        """`(..., d)` E[x] = A_d(κ) μ (not a unit vector: A_d(κ) < 1)."""
        length = mean_resultant_length(self.concentration.cpu().double().numpy(), self.dim)
        return torch.as_tensor(length, dtype=self.loc.dtype, device=self.loc.device)[..., None] * self.loc

    def rsample(self, sample_shape=torch.Size(), generator: torch.Generator | None = None) -> torch.Tensor:
        """`(*sample_shape, *batch_shape, d)` unit samples, differentiable with respect to ``loc``.

        Args:
            sample_shape: leading shape of independent draws.
            generator: source of every random number (on ``loc``'s device); the global RNG if None.
        """
        shape = self._extended_shape(sample_shape)
        kappa = self.concentration.to(torch.float64).expand(shape[:-1]).reshape(-1)
        w = _sample_cosines(kappa, self.dim, generator).reshape(shape[:-1] + (1,))
        tangent = torch.randn(shape[:-1] + (self.dim - 1,), dtype=self.loc.dtype, device=w.device, generator=generator)
        sine = torch.sqrt((1 - w) * (1 + w)).to(self.loc.dtype)
        tail = sine * tangent / tangent.norm(dim=-1, keepdim=True)
        return _reflect_to_loc(self.loc, w.to(self.loc.dtype), tail)

    def sample(self, sample_shape=torch.Size(), generator: torch.Generator | None = None) -> torch.Tensor:
        """Like :meth:`rsample`, without gradients."""
        with torch.no_grad():
            return self.rsample(sample_shape, generator)
