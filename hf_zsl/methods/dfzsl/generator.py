"""DFZSL step 4: a TF-VAEGAN-style conditional generator of L2-normalised features.

Pure tensor code: it sees feature vectors ``(N, d)`` (unit rows), their labels over the seen classes and
one condition vector per class ``(C, a)`` (unit rows, e.g. prompt-tuned text features), and learns to
draw features of a class from its condition, so that conditions of unseen classes yield synthetic
features of those classes (:func:`synthesise`).

The networks and their losses are in :mod:`.generator_networks`.

Differences from the reference (``ylong4/DFZSL`` ``tfvaegan/train_images.py``):

* The reference encoder is ``[x; a] → h → 2·latent → (μ, log σ²)``; with its 512-d features
  ``2·latent = h = 1024``. Here the second layer is ``h`` wide whatever ``d`` is.
* Batches are drawn as in the reference (a fresh random subset per critic step, ``ceil(N / batch)``
  generator steps per pass), but from a seeded scope so that two runs with one seed match.
* The reference runs 120 epochs on a GPU with ``h = 1024`` for 512-d features. **Default here:
  ``h = 2 · d`` (the reference's ratio) and 12 epochs**, to fit about a minute on one CPU thread.
  Measured for N = 6400 (64 classes × 100), d = a = 128, feedback on, one thread, on synthetic data
  (random unit class means, noisy unit features around them, conditions a fixed random linear map of
  the means): ``h = 256`` runs about 5 s per epoch, and after 12 epochs 100 % of the features
  synthesised from seen-class conditions lie nearest their own class mean (chance 1.6 %). At
  ``h = 1024`` an epoch takes 15–17 s and 3 epochs reach 61 %. With a GPU, set ``epochs=120``.
* With ``encoded_noise=False`` the generator's adversarial features get their feedback from their own
  decoding; the reference feeds back the decoding of the VAE reconstruction there.
* Adam uses torch's fused kernel (same update, ~10× faster on CPU for the h × h layers).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Iterator

import torch
from torch import nn

from .generator_networks import (
    ConditionalFeatureGenerator,
    adapt_gp_weight,
    gradient_penalty,
    vae_loss,
    weighted_l1,
)


@dataclasses.dataclass
class GeneratorSettings:
    """Hyper-parameters of :func:`train_generator`; defaults follow the reference's AWA2 run.

    Attributes:
        hidden_size: width ``h`` of every hidden layer; ``None``: ``2 · d`` capped at 1024 (the
            reference's 1024 for 512-d features).
        epochs: passes over the features (each pass twice with feedback: once without, once with it).
        batch_size: features per step.
        critic_iters: critic steps per generator step.
        learning_rate: Adam learning rate of encoder, generator and critic.
        beta1: Adam β1 of generator, critic, decoder and feedback module.
        encoder_beta1: Adam β1 of the encoder; the reference builds its encoder optimiser with torch's
            default betas (0.9, 0.999), unlike the others.
        decoder_learning_rate: Adam learning rate of the semantic decoder.
        feedback_learning_rate: Adam learning rate of the feedback module.
        critic_weight: γ_D, the weight of the whole critic loss.
        adversarial_weight: γ_G, the weight of the generator's adversarial loss.
        initial_gp_weight: λ at the start; adapted by :func:`adapt_gp_weight`.
        reconstruction_weight: weight of the decoder's weighted-L1 loss (on real and on fake features).
        feedback: whether to train and use the feedback module.
        feedback_weight: a1 = a2, the scale of the feedback added to the generator's hidden layer.
        encoded_noise: during training, draw ``z`` for the critic from the encoder's posterior of the real
            batch (as TF-VAEGAN does) rather than from N(0, I); the generator's adversarial and decoder
            losses then use its VAE reconstruction.
        seed: seeds initialisation, batches and noise.
    """

    hidden_size: int | None = None
    epochs: int = 12
    batch_size: int = 64
    critic_iters: int = 5
    learning_rate: float = 3e-5
    beta1: float = 0.5
    encoder_beta1: float = 0.9
    decoder_learning_rate: float = 5e-4
    feedback_learning_rate: float = 7e-4
    critic_weight: float = 10.0
    adversarial_weight: float = 10.0
    initial_gp_weight: float = 10.0
    reconstruction_weight: float = 0.1
    feedback: bool = True
    feedback_weight: float = 0.01
    encoded_noise: bool = True
    seed: int = 0

    def __post_init__(self):
        for name in ("batch_size", "critic_iters", "learning_rate", "decoder_learning_rate", "feedback_learning_rate"):
            if getattr(self, name) <= 0:
                raise ValueError(f"GeneratorSettings.{name} must be positive, got {getattr(self, name)}.")
        if self.epochs < 0:
            raise ValueError(f"GeneratorSettings.epochs must not be negative, got {self.epochs}.")

    def hidden_for(self, feature_dim: int) -> int:
        """The hidden width for ``feature_dim``-d features."""
        return self.hidden_size if self.hidden_size is not None else min(2 * feature_dim, 1024)


@contextlib.contextmanager
def _frozen(*modules: nn.Module) -> Iterator[None]:
    """Within the block the modules' parameters take no gradient (but gradients still flow through them)."""
    params = [p for module in modules for p in module.parameters()]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _check_inputs(features: torch.Tensor, labels: torch.Tensor, conditions: torch.Tensor) -> None:
    """Raise ``ValueError`` unless shapes, label range and unit norms are as :func:`train_generator` needs."""
    if features.ndim != 2 or features.shape[0] == 0:
        raise ValueError(f"`features` must be a non-empty (N, d) tensor, got shape {tuple(features.shape)}.")
    if labels.ndim != 1 or labels.shape[0] != features.shape[0]:
        raise ValueError(
            f"`labels` must be (N,) with N = {features.shape[0]} (one per feature), got shape {tuple(labels.shape)}."
        )
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"`labels` must hold integer class indices, got dtype {labels.dtype}.")
    _check_conditions(conditions)
    if labels.min() < 0 or labels.max() >= conditions.shape[0]:
        raise ValueError(
            f"`labels` index the rows of `conditions`: they must lie in [0, {conditions.shape[0]}), "
            f"got range [{int(labels.min())}, {int(labels.max())}]."
        )
    _check_unit_rows(features, "features")


def _check_conditions(conditions: torch.Tensor, columns: int | None = None) -> None:
    if conditions.ndim != 2 or conditions.shape[0] == 0:
        raise ValueError(f"`conditions` must be a non-empty (C, a) tensor, got shape {tuple(conditions.shape)}.")
    if columns is not None and conditions.shape[1] != columns:
        raise ValueError(f"`conditions` must have {columns} columns (the generator's a), got {conditions.shape[1]}.")
    _check_unit_rows(conditions, "conditions")


def _check_unit_rows(rows: torch.Tensor, name: str) -> None:
    norms = rows.norm(dim=1)
    if not torch.allclose(norms, torch.ones_like(norms), atol=1e-3):
        raise ValueError(f"`{name}` must have L2-normalised rows (norms range {norms.min():.3f}–{norms.max():.3f}).")


def _adam(module: nn.Module, lr: float, beta1: float) -> torch.optim.Adam:
    # The fused kernel is about 10× faster than the default on CPU, where the optimiser step of the
    # h × h layers otherwise costs as much as the forward and backward passes.
    return torch.optim.Adam(module.parameters(), lr=lr, betas=(beta1, 0.999), fused=True)


class _Optimisers:
    """One Adam per module, with the reference's learning rates and betas."""

    def __init__(self, model: ConditionalFeatureGenerator, settings: GeneratorSettings):
        lr, beta1 = settings.learning_rate, settings.beta1
        self.encoder = _adam(model.encoder, lr, settings.encoder_beta1)
        self.generator = _adam(model.generator, lr, beta1)
        self.critic = _adam(model.critic, lr, beta1)
        self.decoder = _adam(model.decoder, settings.decoder_learning_rate, beta1)
        self.feedback = None
        if model.feedback is not None:
            self.feedback = _adam(model.feedback, settings.feedback_learning_rate, beta1)


class _Trainer:
    """The TF-VAEGAN loop over one set of features; :meth:`run_pass` is one pass over them."""

    def __init__(self, model, features, conditions_per_sample, settings: GeneratorSettings):
        self.model, self.settings = model, settings
        self.features, self.conditions = features, conditions_per_sample
        self.optim = _Optimisers(model, settings)
        self.gp_weight = settings.initial_gp_weight
        self.batch_size = min(settings.batch_size, features.shape[0])

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A random batch: features ``(B, d)`` and their conditions ``(B, a)``."""
        index = torch.randperm(self.features.shape[0])[: self.batch_size]
        return self.features[index], self.conditions[index]

    def _decoder_step(self, real: torch.Tensor, conditions: torch.Tensor) -> float:
        self.optim.decoder.zero_grad()
        loss = self.settings.reconstruction_weight * weighted_l1(self.model.decoder(real)[0], conditions)
        loss.backward()
        self.optim.decoder.step()
        return loss.item()

    def _critic_step(self, real, conditions, use_feedback: bool) -> dict[str, float]:
        model, s = self.model, self.settings
        with torch.no_grad():
            if s.encoded_noise:
                noise = model.encoder.sample(real, conditions)[0]
            else:
                noise = torch.randn(real.shape[0], model.latent_size, device=real.device)
            fake = model(noise, conditions, use_feedback)
        self.optim.critic.zero_grad()
        wasserstein = model.critic(real, conditions).mean() - model.critic(fake, conditions).mean()
        penalty = gradient_penalty(model.critic, real, fake, conditions)
        loss = s.critic_weight * (-wasserstein + self.gp_weight * penalty)
        loss.backward()
        self.optim.critic.step()
        return {"critic": loss.item(), "wasserstein": wasserstein.item(), "gradient_penalty": penalty.item()}

    def _generator_step(self, real, conditions, use_feedback: bool) -> dict[str, float]:
        model, s = self.model, self.settings
        for optimiser in (self.optim.encoder, self.optim.generator, self.optim.feedback):
            if optimiser is not None:
                optimiser.zero_grad()
        noise, mean, log_var = model.encoder.sample(real, conditions)
        reconstruction = model(noise, conditions, use_feedback)
        vae = vae_loss(reconstruction, real, mean, log_var)
        if s.encoded_noise:
            fake = reconstruction
        else:
            fake = model(torch.randn(real.shape[0], model.latent_size, device=real.device), conditions, use_feedback)
        with _frozen(model.critic, model.decoder):
            adversarial = -model.critic(fake, conditions).mean()
            semantic = weighted_l1(model.decoder(fake)[0], conditions)
        loss = vae + s.adversarial_weight * adversarial + s.reconstruction_weight * semantic
        loss.backward()
        self.optim.encoder.step()
        self.optim.generator.step()
        if use_feedback:
            self.optim.feedback.step()
        return {"vae": vae.item(), "adversarial": adversarial.item(), "decoder_fake": semantic.item()}

    def run_pass(self, use_feedback: bool) -> list[dict[str, float]]:
        """``ceil(N / batch)`` rounds of (critic_iters × (decoder + critic step), λ update, generator step)."""
        rounds = []
        for _ in range(math.ceil(self.features.shape[0] / self.batch_size)):
            critic_logs = []
            for _ in range(self.settings.critic_iters):
                real, conditions = self._batch()
                decoder_real = self._decoder_step(real, conditions)
                critic_logs.append({**self._critic_step(real, conditions, use_feedback), "decoder_real": decoder_real})
            mean_penalty = sum(log["gradient_penalty"] for log in critic_logs) / len(critic_logs)
            self.gp_weight = adapt_gp_weight(self.gp_weight, mean_penalty)
            # The generator step reuses the round's last batch, as the reference does.
            generator_log = self._generator_step(real, conditions, use_feedback)
            rounds.append({**_mean_logs(critic_logs), **generator_log, "gp_weight": self.gp_weight})
        return rounds


def _mean_logs(logs: list[dict[str, float]]) -> dict[str, float]:
    """Key-wise mean of dicts with the same keys."""
    return {key: sum(log[key] for log in logs) / len(logs) for key in logs[0]}


def train_generator(
    features: torch.Tensor,
    labels: torch.Tensor,
    conditions: torch.Tensor,
    settings: GeneratorSettings | None = None,
) -> ConditionalFeatureGenerator:
    """Train the conditional generator on labelled features of the seen classes.

    Args:
        features: `(N, d)` L2-normalised features (DFZSL: the virtual seen-class features); the generator is
            built and trained on their device.
        labels: `(N,)` integer indices into the rows of ``conditions``.
        conditions: `(C_seen, a)` L2-normalised condition of each seen class (DFZSL: FLPT text features).
        settings: hyper-parameters; :class:`GeneratorSettings` defaults when ``None``.

    Returns:
        The trained :class:`ConditionalFeatureGenerator` (in eval mode), with ``history`` (per epoch: mean
        critic / generator losses, GP and its weight λ at the epoch's end, seconds) and ``train_seconds``.
        Global RNG state is left untouched; the same seed gives the same model.
    """
    settings = settings or GeneratorSettings()
    _check_inputs(features, labels, conditions)
    device = features.device
    features, conditions = features.detach().float(), conditions.detach().float().to(device)
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(settings.seed)
        model = ConditionalFeatureGenerator(
            features.shape[1], conditions.shape[1], settings.hidden_for(features.shape[1]),
            settings.feedback, settings.feedback_weight,
        ).to(device)
        model.train()
        trainer = _Trainer(model, features, conditions[labels.long()], settings)
        loops = (False, True) if settings.feedback else (False,)
        for epoch in range(settings.epochs):
            epoch_start = time.perf_counter()
            rounds = [log for use_feedback in loops for log in trainer.run_pass(use_feedback)]
            summary = {**_mean_logs(rounds), "gp_weight": trainer.gp_weight}
            model.history.append({"epoch": epoch + 1, **summary, "seconds": time.perf_counter() - epoch_start})
    model.train_seconds = time.perf_counter() - start
    return model.eval()


@torch.no_grad()
def synthesise(
    generator: ConditionalFeatureGenerator, conditions: torch.Tensor, per_class: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``per_class`` features for each condition (with feedback when the generator has it).

    Args:
        generator: a trained :class:`ConditionalFeatureGenerator`.
        conditions: `(C, a)` L2-normalised conditions (DFZSL: the unseen classes' text features).
        per_class: features per condition (the reference draws 1800).
        seed: seeds the noise ``z ~ N(0, I)`` through a local ``torch.Generator``.

    Returns:
        ``(features (C · per_class, d) unit rows, labels (C · per_class,))``; label ``i`` is row ``i`` of
        ``conditions``, features grouped by class in row order, on the generator's device (the noise is
        drawn on the CPU, so a seed gives the same noise on every device).
    """
    _check_conditions(conditions, generator.condition_dim)
    if per_class < 1:
        raise ValueError(f"`per_class` must be at least 1, got {per_class}.")
    rng = torch.Generator().manual_seed(seed)
    device = next(generator.parameters()).device
    generator.eval()
    drawn = []
    for condition in conditions.float().to(device):
        noise = torch.randn(per_class, generator.latent_size, generator=rng).to(device)
        drawn.append(generator(noise, condition.expand(per_class, -1)))
    labels = torch.arange(conditions.shape[0]).repeat_interleave(per_class)
    return torch.cat(drawn), labels
