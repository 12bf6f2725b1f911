"""The networks and losses of DFZSL's TF-VAEGAN-style conditional generator (trained in :mod:`.generator`).

Modules (``h`` = :attr:`GeneratorSettings.hidden_size`, latent size = ``d``), as in TF-VAEGAN
(Narayan et al., ECCV 2020) with DFZSL's change of an L2-normalised generator output:

* encoder ``[x; a] → h → h → (μ, log σ²)``;
* generator ``[z; a] → h (LeakyReLU 0.2) → d``, output L2-normalised;
* conditional critic ``[x; a] → h → 1`` (WGAN-GP);
* semantic decoder ``x → h → a``, output L2-normalised, trained to reconstruct the condition of real
  features and used (frozen) to make the generator's features carry their condition;
* feedback module ``h → h → h``: the decoder's hidden layer, fed back into the generator's hidden
  layer with weight ``feedback_weight`` (second pass of each epoch, and at synthesis time).

Losses: VAE (summed squared error / batch + KL), generator ``+ γ_G · (−critic(fake))`` and
``+ 0.1 · weighted-L1(decoder(fake), a)``; critic ``γ_D · (critic(fake) − critic(real) + λ · GP)`` with
λ adapted after every critic round (:func:`adapt_gp_weight`); decoder ``0.1 · weighted-L1(decoder(x), a)``
on real features. "Weighted L1" is TF-VAEGAN's: per row ``Σ_i e_i² / ||e||₂ · |e_i|`` for the error
``e``, averaged over the batch (:func:`weighted_l1`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LEAKY_SLOPE = 0.2


def _init_linear(module: nn.Module) -> None:
    """TF-VAEGAN initialisation: linear weights ~ N(0, 0.02), biases 0."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.02)
        nn.init.zeros_(module.bias)


def _leaky(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, LEAKY_SLOPE)


class ConditionalEncoder(nn.Module):
    """``[x; a] → h → h → (μ, log σ²)``: the VAE posterior over the latent ``z`` (size ``latent_size``)."""

    def __init__(self, feature_dim: int, condition_dim: int, hidden_size: int, latent_size: int):
        super().__init__()
        self.fc1 = nn.Linear(feature_dim + condition_dim, hidden_size)
        self.fc2 = nn.Linear(hidden_size, hidden_size)
        self.mean = nn.Linear(hidden_size, latent_size)
        self.log_var = nn.Linear(hidden_size, latent_size)

    def forward(self, features: torch.Tensor, conditions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, d), (B, a) -> (μ (B, latent), log σ² (B, latent))``."""
        hidden = _leaky(self.fc2(_leaky(self.fc1(torch.cat([features, conditions], dim=1)))))
        return self.mean(hidden), self.log_var(hidden)

    def sample(self, features: torch.Tensor, conditions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reparameterised ``z ~ q(z | x, a)``: ``(z, μ, log σ²)``, each ``(B, latent)``."""
        mean, log_var = self(features, conditions)
        return mean + torch.randn_like(mean) * torch.exp(0.5 * log_var), mean, log_var


class FeatureGenerator(nn.Module):
    """``[z; a] → h (LeakyReLU 0.2) → d``, L2-normalised; the hidden layer can take a feedback term."""

    def __init__(self, latent_size: int, condition_dim: int, hidden_size: int, feature_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(latent_size + condition_dim, hidden_size)
        self.fc2 = nn.Linear(hidden_size, feature_dim)

    def forward(self, noise: torch.Tensor, conditions: torch.Tensor, feedback: torch.Tensor | None = None):
        """``(B, latent), (B, a)[, (B, h) already scaled] -> (B, d)`` unit rows."""
        hidden = _leaky(self.fc1(torch.cat([noise, conditions], dim=1)))
        if feedback is not None:
            hidden = hidden + feedback
        return F.normalize(self.fc2(hidden), dim=1)


class ConditionalCritic(nn.Module):
    """``[x; a] → h → 1``: the WGAN critic's score of a feature under a condition."""

    def __init__(self, feature_dim: int, condition_dim: int, hidden_size: int):
        super().__init__()
        self.fc1 = nn.Linear(feature_dim + condition_dim, hidden_size)
        self.fc2 = nn.Linear(hidden_size, 1)

    def forward(self, features: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
        """``(B, d), (B, a) -> (B,)`` scores."""
        return self.fc2(_leaky(self.fc1(torch.cat([features, conditions], dim=1)))).squeeze(1)


class SemanticDecoder(nn.Module):
    """``x → h → a``, L2-normalised: recovers a feature's condition; its hidden layer feeds the feedback."""

    def __init__(self, feature_dim: int, hidden_size: int, condition_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(feature_dim, hidden_size)
        self.fc2 = nn.Linear(hidden_size, condition_dim)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, d) -> (reconstructed condition (B, a) unit rows, hidden layer (B, h))``."""
        hidden = _leaky(self.fc1(features))
        return F.normalize(self.fc2(hidden), dim=1), hidden


class FeedbackModule(nn.Module):
    """``h → h → h`` (LeakyReLU after both layers): maps the decoder's hidden layer to the generator's."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """``(B, h) -> (B, h)``."""
        return _leaky(self.fc2(_leaky(self.fc1(hidden))))


class ConditionalFeatureGenerator(nn.Module):
    """The trained parts of the TF-VAEGAN: encoder, generator, critic, decoder and (optional) feedback.

    Attributes:
        feature_dim, condition_dim, latent_size: ``d``, ``a`` and the latent size (= ``d``).
        feedback_weight: scale of the feedback term (a1 = a2).
        history: one dict of mean losses per epoch (filled by :func:`train_generator`).
        train_seconds: wall time of :func:`train_generator`.
    """

    def __init__(self, feature_dim: int, condition_dim: int, hidden_size: int, feedback: bool, feedback_weight: float):
        super().__init__()
        self.feature_dim, self.condition_dim, self.latent_size = feature_dim, condition_dim, feature_dim
        self.feedback_weight = feedback_weight
        self.encoder = ConditionalEncoder(feature_dim, condition_dim, hidden_size, self.latent_size)
        self.generator = FeatureGenerator(self.latent_size, condition_dim, hidden_size, feature_dim)
        self.critic = ConditionalCritic(feature_dim, condition_dim, hidden_size)
        self.decoder = SemanticDecoder(feature_dim, hidden_size, condition_dim)
        self.feedback = FeedbackModule(hidden_size) if feedback else None
        self.apply(_init_linear)
        self.history: list[dict[str, float]] = []
        self.train_seconds = 0.0

    def forward(self, noise: torch.Tensor, conditions: torch.Tensor, use_feedback: bool = True) -> torch.Tensor:
        """Features ``(B, d)`` (unit rows) for ``noise (B, latent)`` and ``conditions (B, a)``.

        With feedback (when the model has it and ``use_feedback``), a first draw goes through the decoder,
        whose detached hidden layer, through the feedback module, shifts the generator's hidden layer for
        the second, returned draw.
        """
        fake = self.generator(noise, conditions)
        if self.feedback is None or not use_feedback:
            return fake
        decoder_hidden = self.decoder(fake)[1].detach()
        return self.generator(noise, conditions, self.feedback_weight * self.feedback(decoder_hidden))


def weighted_l1(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """TF-VAEGAN's weighted L1: mean over rows of ``Σ_i (e_i² / ||e||₂) · |e_i|``, ``e = prediction − target``.

    Args:
        prediction, target: `(B, a)`.
    Returns:
        A scalar; large errors weigh more than in plain L1.
    """
    error = prediction - target
    weights = error.pow(2) / error.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return (weights * error.abs()).sum(dim=1).mean()


def vae_loss(reconstruction: torch.Tensor, features: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor):
    """Summed squared reconstruction error plus KL(q(z|x,a) || N(0, I)), both divided by the batch size."""
    batch = features.shape[0]
    squared_error = (reconstruction - features).pow(2).sum()
    kl = -0.5 * (1 + log_var - mean.pow(2) - log_var.exp()).sum()
    return (squared_error + kl) / batch


def gradient_penalty(critic: ConditionalCritic, real: torch.Tensor, fake: torch.Tensor, conditions: torch.Tensor):
    """WGAN-GP: mean of ``(||∇_x critic(x̂, a)||₂ − 1)²`` at random interpolates ``x̂`` of real and fake `(B, d)`."""
    alpha = torch.rand(real.shape[0], 1, device=real.device)
    interpolates = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    scores = critic(interpolates, conditions)
    (gradients,) = torch.autograd.grad(scores.sum(), interpolates, create_graph=True)
    return (gradients.norm(dim=1) - 1).pow(2).mean()


def adapt_gp_weight(
    weight: float, mean_penalty: float, factor: float = 1.1, upper: float = 1.05, lower: float = 1.001
) -> float:
    """TF-VAEGAN's adaptive λ after a critic round of mean (unweighted) gradient penalty ``mean_penalty``.

    ``× factor`` above ``upper``, ``÷ factor`` below ``lower``, unchanged in between.
    """
    if mean_penalty > upper:
        return weight * factor
    if mean_penalty < lower:
        return weight / factor
    return weight
