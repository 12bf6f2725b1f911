"""DFZSL step 2, virtual domain modelling: recover seen-class features from a classifier alone.

The "server" is a cosine classifier over the seen classes, logits_c(x) = cos(x, w_c) / T. Without
any image, each seen class c is modelled as a von Mises–Fisher distribution vMF(μ_c, κ) on the
unit sphere of CLIP's joint space, and the directions μ_c are learned by distillation: samples
drawn (reparameterised) from the student vMFs are scored by both the server and the student's own
cosine classifier over the μ's, and the student matches the server's logits.

This is the black-box path of the official code (MSE between the two logit vectors: it needs the
server's logits, not its weights). The white-box variant (cross-entropy of the server's logits
against the sampled class) is not implemented. κ is one shared constant from the six-sigma rule
(:func:`hf_zsl.vmf.six_sigma_concentration`), never learned.

Everything operates on tensors (no images, no datasets) and is seeded through one
``torch.Generator``, so equal inputs and settings give bit-identical results on one machine.
"""

from __future__ import annotations

import dataclasses
import logging

import torch
import torch.nn.functional as F

from ...vmf import VonMisesFisher, six_sigma_concentration
from .classifier import cosine_logits

logger = logging.getLogger(__name__)

MU_INITIALISATIONS = ("text", "classifier")


@dataclasses.dataclass
class SimulatorSettings:
    """Simulator hyper-parameters (defaults: the official AWA2 / APY / ImageNet configuration).

    Attributes:
        samples_per_class_per_step: vMF samples drawn per class at every step (``nsample``).
        steps: optimisation steps (the config's ``epochs``).
        learning_rate: Adam's initial rate lr0; step t uses lr0 · (1 + 0.001 t)^(-0.75).
        weight_decay: Adam's L2 penalty on the raw (unnormalised) μ parameters.
        theta: multiplier of the six-sigma κ before the softplus (OxfordPets 5.0, FGVCAircraft 0.02).
        temperature: T of both cosine classifiers.
        virtual_per_class: samples drawn per class by :func:`virtual_features` (``num``).
        mu_init: "text" (normalised prototypes, the official code) or "classifier" (normalised
            server weights, the paper's description).
        seed: seed of the generator behind every random draw.
    """

    samples_per_class_per_step: int = 50
    steps: int = 1000
    learning_rate: float = 3e-3
    weight_decay: float = 5e-4
    theta: float = 1.0
    temperature: float = 1.0
    virtual_per_class: int = 100
    mu_init: str = "text"
    seed: int = 0

    def __post_init__(self):
        if self.mu_init not in MU_INITIALISATIONS:
            raise ValueError(f"mu_init must be one of {MU_INITIALISATIONS}, got {self.mu_init!r}.")
        if self.samples_per_class_per_step < 1 or self.steps < 0 or self.virtual_per_class < 1:
            raise ValueError("samples_per_class_per_step and virtual_per_class must be >= 1, steps >= 0.")
        if self.theta <= 0 or self.temperature <= 0:
            raise ValueError("theta and temperature must be > 0.")


@dataclasses.dataclass
class SimulatorResult:
    """A fitted simulator: one vMF per seen class, vMF(mu[c], kappa).

    Attributes:
        mu: `(C, d)` unit mean directions, those of the best step.
        kappa: the shared concentration softplus(theta · six-sigma κ).
        losses: `(steps,)` list, the distillation loss of step t at index t - 1.
        alignment: `(steps + 1,)` list of mean_c cos(μ_c, w_c): index 0 is the initialisation,
            index t the state after step t.
        best_step: the index of ``alignment`` whose μ is kept (0: the initialisation).
    """

    mu: torch.Tensor
    kappa: float
    losses: list[float]
    alignment: list[float]
    best_step: int


DEFAULTS = SimulatorSettings()


def _check_pair(server_weights: torch.Tensor, prototypes: torch.Tensor) -> None:
    """Both `(C, d)` with the same shape, C ≥ 2."""
    if server_weights.ndim != 2 or server_weights.shape[0] < 2:
        raise ValueError(f"server_weights must be (C >= 2, d), got shape {tuple(server_weights.shape)}.")
    if prototypes.shape != server_weights.shape:
        raise ValueError(f"prototypes {tuple(prototypes.shape)} and server_weights {tuple(server_weights.shape)} differ in shape.")


def simulator_concentration(prototypes: torch.Tensor, theta: float) -> float:
    """κ = softplus(theta · max_c κ_c), DFZSL's shared concentration, from `(C, d)` prototypes."""
    _, shared = six_sigma_concentration(prototypes)
    return float(F.softplus(torch.tensor(theta * shared, dtype=torch.float64)))


def _lr_factor(step: int) -> float:
    """The official schedule's multiplier of lr0 at ``step``: (1 + 0.001 step)^(-0.75)."""
    return (1 + 0.001 * step) ** -0.75


def fit_simulator(server_weights: torch.Tensor, prototypes: torch.Tensor, settings: SimulatorSettings = DEFAULTS) -> SimulatorResult:
    """Learn one vMF mean direction per seen class by distilling the server's cosine logits.

    Each step draws ``samples_per_class_per_step`` samples X per class from vMF(μ_c, κ)
    (reparameterised), and minimises MSE(cos(X, μ)/T, cos(X, W)/T) over μ, the server's logits
    detached. The μ kept is the one with the highest mean_c cos(μ_c, w_c), a data-free selection
    rule (the official "protocol"). Computed in float32 on the inputs' device.

    Args:
        server_weights: `(C, d)` the server's class weights W (any norms: the classifier is cosine).
        prototypes: `(C, d)` class text features (any norms), for κ and the default initialisation.
        settings: hyper-parameters.

    Returns:
        The fitted :class:`SimulatorResult`.
    """
    _check_pair(server_weights, prototypes)
    weights = F.normalize(server_weights.detach().float(), dim=-1)
    kappa = simulator_concentration(prototypes, settings.theta)
    start = prototypes if settings.mu_init == "text" else server_weights
    mu = torch.nn.Parameter(F.normalize(start.detach().float(), dim=-1).clone())
    optimiser = torch.optim.Adam([mu], lr=settings.learning_rate, betas=(0.9, 0.999), weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, _lr_factor)
    generator = torch.Generator(device=mu.device).manual_seed(settings.seed)

    def alignment() -> float:
        return float((F.normalize(mu.detach(), dim=-1) * weights).sum(-1).mean())

    best_mu, best_step, history, losses = F.normalize(mu.detach(), dim=-1), 0, [alignment()], []
    for step in range(1, settings.steps + 1):
        directions = F.normalize(mu, dim=-1)
        x = VonMisesFisher(directions, kappa).rsample((settings.samples_per_class_per_step,), generator)
        x = x.reshape(-1, x.shape[-1])
        loss = F.mse_loss(cosine_logits(x, directions, settings.temperature), cosine_logits(x.detach(), weights, settings.temperature))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        history.append(alignment())
        if history[step] > history[best_step]:
            best_mu, best_step = F.normalize(mu.detach(), dim=-1), step
    return SimulatorResult(mu=best_mu, kappa=kappa, losses=losses, alignment=history, best_step=best_step)


def virtual_features(
    result: SimulatorResult,
    server_weights: torch.Tensor,
    per_class: int = SimulatorSettings.virtual_per_class,
    seed: int = SimulatorSettings.seed,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw the virtual seen-class set and keep its "trusted" samples.

    ``per_class`` samples are drawn from each vMF(μ_c, κ); a sample of class c is trusted when the
    server classifies it as c (argmax_c' cos(x, w_c') = c). The kept count is logged at INFO level
    (per class: ``labels.bincount()``).

    Args:
        result: a fitted simulator.
        server_weights: `(C, d)` the server's class weights.
        per_class: samples drawn per class before filtering.
        seed: seed of the sampling generator.

    Returns:
        ``(features, labels)``: `(N, d)` unit features and `(N,)` int64 class indices, class-major
        order, N ≤ C · per_class.

    Raises:
        ValueError: if some class keeps no sample. Its vMF then lies outside the server's decision
            region for it: κ too low for the class's margin (all samples spill into neighbours), or
            the server disagrees with the prototypes μ was initialised from (μ_c nearer to another
            class's weight).
    """
    if server_weights.shape != result.mu.shape:
        raise ValueError(f"server_weights {tuple(server_weights.shape)} do not match the simulator's {tuple(result.mu.shape)}.")
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}.")
    generator = torch.Generator(device=result.mu.device).manual_seed(seed)
    x = VonMisesFisher(result.mu, result.kappa).sample((per_class,), generator).transpose(0, 1)
    num_classes, dim = result.mu.shape
    features = x.reshape(-1, dim)
    labels = torch.arange(num_classes, device=features.device).repeat_interleave(per_class)
    trusted = cosine_logits(features, server_weights.to(features), 1.0).argmax(-1) == labels
    kept = trusted.reshape(num_classes, per_class).sum(-1)
    if torch.any(kept == 0):
        empty = torch.nonzero(kept == 0).flatten().tolist()
        raise ValueError(
            f"Classes {empty} keep no trusted virtual sample: the server assigns every draw to another class "
            f"(κ={result.kappa:.3g} too low for their margin, or the server disagrees with the prototypes)."
        )
    logger.info("Virtual features: kept %d of %d trusted samples (fewest per class: %d).", int(kept.sum()), trusted.numel(), int(kept.min()))
    return features[trusted], labels[trusted]
