"""DFZSL: the served model of data-free generalised zero-shot learning (Tang et al., AAAI 2024).

Training (``hf_zsl.methods.dfzsl``) recovers virtual seen-class features from a server classifier,
tunes the prompt on them (FLPT), synthesises new-class features with a conditional generator and
trains the classifier held here. What is served is small: FLPT's context tokens, its ``t2i``
residual, and one cosine-classifier row per class.
"""

import torch
import torch.nn.functional as F
from torch import nn
from transformers.activations import QuickGELUActivation

from .configuration_dfzsl import DFZSLConfig
from .modeling_coop import CoOpModel

T2I_INIT_STD = 0.02  # the first t2i layer's N(0, 0.02²) initialisation; the second starts at zero


class DFZSLModel(CoOpModel):
    """FLPT (feature-language prompt tuning) + a cosine classifier over seen and new classes.

    * Text side: CoOp's unified context, ``[SOS] ctx_1 .. ctx_4 <label> . [EOS]`` (placeholder tokens
      whose embeddings are PEFT trainable tokens, initialised from ``"a photo of a"``).
    * Image side: ``x' = x + λ·r`` with ``r = mean_i t2i(ctx_i)`` `(dim,)`, one vector shared by every
      image; ``t2i`` is ``Linear(width → expansion·width) → QuickGELU → Linear(→ dim)`` whose last
      layer starts at zero, so the untrained residual is 0.
    * Scores: ``cos(x', w_c) / T``. Classes in ``config.class_names`` use their trained classifier
      row ``w_c`` (initialised from their FLPT text feature); any other label uses its FLPT text feature.
    """

    config_class = DFZSLConfig

    def __init__(self, config: DFZSLConfig):
        super().__init__(config)
        width = self.encoder.text_width
        dim = self.encoder.embed_dim
        self.t2i = nn.Sequential(
            nn.Linear(width, config.t2i_expansion * width), QuickGELUActivation(), nn.Linear(config.t2i_expansion * width, dim)
        )
        self.class_weights = nn.Parameter(torch.zeros(len(config.class_names or []), dim))

    def reset_context(self) -> None:
        """Context := its initialisation (see :meth:`CoOpModel.reset_context`); ``t2i`` := residual 0."""
        super().reset_context()
        first, last = self.t2i[0], self.t2i[2]
        with torch.no_grad():
            # Drawn on the CPU, so a seed gives the same residual on every device.
            generator = torch.Generator().manual_seed(self.config.context_seed)
            first.weight.copy_(torch.empty(first.weight.shape).normal_(0.0, T2I_INIT_STD, generator=generator))
            first.bias.zero_()
            last.weight.zero_()
            last.bias.zero_()

    # ------------------------------------------------------------------ the classifier
    def set_classifier(self, class_names: list[str], weights: torch.Tensor, seen_class_names: list[str]) -> None:
        """Install the classifier: one row of ``weights`` `(len(class_names), dim)` per class.

        Args:
            class_names: every class the classifier scores (seen first or not; any order).
            weights: their rows (normalised when used).
            seen_class_names: the subset the server classifier knew.
        """
        if weights.shape != (len(class_names), self.encoder.embed_dim):
            raise ValueError(
                f"weights must have shape ({len(class_names)}, {self.encoder.embed_dim}), "
                f"one row per class; got {tuple(weights.shape)}."
            )
        missing = sorted(set(seen_class_names) - set(class_names))
        if missing:
            raise ValueError(f"Seen classes {missing} are not among the classifier's classes.")
        self.config.set_classes(self.tokenizer, class_names)
        self.config.seen_class_names = list(seen_class_names)
        self.class_weights = nn.Parameter(weights.detach().clone().to(self.class_weights))
        self.text_cache.clear()

    def clear_classifier(self) -> None:
        """Remove the classifier: every label is then scored against its FLPT text feature."""
        self.config.class_names = self.config.class_token_ids = self.config.seen_class_names = None
        self.class_weights = nn.Parameter(self.class_weights.new_zeros(0, self.class_weights.shape[1]))
        self.text_cache.clear()

    def prompt_tuned_features(self, labels: list[tuple[int, ...]]) -> torch.Tensor:
        """FLPT text features `(num_labels, dim)` of ``[SOS] ctx <label> . [EOS]``, ignoring the classifier."""
        return super().encode_labels(labels)

    def encode_labels(self, labels: list[tuple[int, ...]]) -> torch.Tensor:
        """Normalised classifier rows for the classifier's classes, FLPT text features for others, `(labels, dim)`."""
        return self.class_rows_or(labels, self.class_weights, self.prompt_tuned_features)

    # ------------------------------------------------------------------ the image side
    def residual(self) -> torch.Tensor:
        """``r = mean over context tokens of t2i(ctx)``, shape `(dim,)`."""
        return self.t2i(self.context).mean(dim=0)

    def adapt_images(self, image_embeds: torch.Tensor) -> torch.Tensor:
        """``x + λ·r`` for L2-normalised image features `(num_images, dim)` (not renormalised)."""
        return image_embeds + self.config.residual_weight * self.residual().to(image_embeds.dtype)

    def compute_logits(
        self,
        image_embeds: torch.Tensor,
        text_embeds: torch.Tensor,
        labels: list[tuple[int, ...]],
        pixel_values: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``cos(x + λ·r, w_c) / T``, shape `(num_images, num_labels)`."""
        adapted = F.normalize(self.adapt_images(image_embeds), dim=-1)
        return adapted @ text_embeds.t() / self.config.temperature
