"""Tip-Adapter and Tip-Adapter-F: zero-shot CLIP plus a key-value cache of few-shot image features."""

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_tip_adapter import TipAdapterConfig, TipAdapterFConfig
from .modeling_base import HfZslPreTrainedModel


class TipAdapterModel(HfZslPreTrainedModel):
    """Tip-Adapter (Zhang et al., ECCV 2022).

    The cache holds one key per support image (``cache_keys``, `(num_cache_entries, dim)`, the
    L2-normalised mean feature of augmented views) and its class (``cache_labels``,
    `(num_cache_entries,)`; the values are their one-hot rows over the trained classes). For an
    image feature ``f`` (L2-normalised):

        cache(f) = exp(-beta * (1 - f · Kᵀ)) · V                    (images × trained classes)
        logits   = logit_scale * f · Tᵀ + alpha * cache(f)[:, trained class of each label]

    where ``T`` are the labels' zero-shot text features. A label that is not a trained class gets
    the zero-shot score only. With ``config.fine_tune_keys`` (Tip-Adapter-F) the keys are a
    learnable parameter; otherwise they are a buffer and nothing is trained.
    """

    config_class = TipAdapterConfig
    default_templates = ["a photo of a {}."]
    needs_class_names = True

    def __init__(self, config: TipAdapterConfig):
        super().__init__(config)
        entries = config.num_cache_entries
        keys = torch.zeros(entries, self.encoder.embed_dim)
        if config.fine_tune_keys:
            self.cache_keys = nn.Parameter(keys)
        else:
            self.register_buffer("cache_keys", keys)
        self.register_buffer("cache_labels", torch.zeros(entries, dtype=torch.long))

    def set_cache(self, keys: torch.Tensor, labels: torch.Tensor) -> None:
        """Fill the cache and record its size in the config.

        Args:
            keys: `(entries, dim)` support features (e.g. the mean of augmented views); stored L2-normalised.
            labels: `(entries,)` index of each entry's trained class.
        """
        num_classes = len(self.config.class_names)
        if keys.ndim != 2 or keys.shape[1] != self.encoder.embed_dim or labels.shape != keys.shape[:1]:
            raise ValueError(f"Cache keys must be (entries, dim) with one label each; got {tuple(keys.shape)} keys "
                             f"and {tuple(labels.shape)} labels.")
        if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"Cache labels must index the {num_classes} trained classes.")
        keys = F.normalize(keys.detach().to(self.device, self.dtype), dim=-1).clone()
        self.cache_keys = nn.Parameter(keys) if self.config.fine_tune_keys else keys
        self.cache_labels = labels.detach().to(self.device, torch.long).clone()
        self.config.num_cache_entries = len(labels)

    def text_parameters(self) -> list[torch.nn.Parameter]:
        """The text tower only: label features do not depend on the cache."""
        return [p for p in super().text_parameters() if p is not self.cache_keys]

    def label_features(self, labels: list[tuple[int, ...]]) -> torch.Tensor:
        """Zero-shot label features, computed without autograd (nothing upstream of them is learned)
        so they stay cached while the keys train."""
        with torch.no_grad():
            return super().label_features(labels)

    def cache_logits(self, image_embeds: torch.Tensor, beta: float | None = None) -> torch.Tensor:
        """``exp(-beta * (1 - f · Kᵀ)) · V``, shape `(num_images, num_trained_classes)`."""
        beta = self.config.beta if beta is None else beta
        affinity = image_embeds @ self.cache_keys.t()
        values = F.one_hot(self.cache_labels, len(self.config.class_names)).to(affinity.dtype)
        return torch.exp(-beta * (1 - affinity)) @ values

    def compute_logits(
        self,
        image_embeds: torch.Tensor,
        text_embeds: torch.Tensor,
        labels: list[tuple[int, ...]],
        pixel_values: torch.Tensor | None = None,
        alpha: float | None = None,
        beta: float | None = None,
    ) -> torch.Tensor:
        """Zero-shot logits plus ``alpha`` times the cache logits of each trained label,
        shape `(num_images, num_labels)`; ``alpha`` / ``beta`` default to the config's."""
        logits = super().compute_logits(image_embeds, text_embeds, labels)
        indices = self.trained_class_indices(labels)
        columns = [column for column, index in enumerate(indices) if index is not None]
        if not columns:
            return logits
        alpha = self.config.alpha if alpha is None else alpha
        cache = self.cache_logits(image_embeds, beta)[:, [indices[column] for column in columns]]
        return logits.index_add(1, torch.tensor(columns, device=logits.device), alpha * cache.to(logits.dtype))


class TipAdapterFModel(TipAdapterModel):
    """Tip-Adapter-F: :class:`TipAdapterModel` whose cache keys are fine-tuned (``fine_tune_keys=True``)."""

    config_class = TipAdapterFConfig
