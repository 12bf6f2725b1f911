"""Linear probe over frozen CLIP image features, served as a cosine classifier."""

import torch
from torch import nn

from .configuration_linear_probe import LinearProbeConfig
from .modeling_base import HfZslPreTrainedModel


class LinearProbeModel(HfZslPreTrainedModel):
    """A linear classifier ``W`` (classes × dim, no bias) on L2-normalised image features.

    Scores are ``logit_scale * cos(x, w_c)``: the probe's rows live in the same space as text
    features, so a label that was not trained falls back to its zero-shot text feature and both
    kinds of label compete on one scale. Without a bias this is also the form of DFZSL's "server"
    classifier (a logistic regression without intercept, queried as a cosine classifier).
    """

    config_class = LinearProbeConfig
    default_templates = ["a photo of a {}."]
    needs_class_names = True

    def __init__(self, config: LinearProbeConfig):
        super().__init__(config)
        num_classes = len(config.class_names or [])
        self.class_weights = nn.Parameter(torch.zeros(num_classes, self.encoder.embed_dim))

    def reset_class_weights(self) -> None:
        """Zero weights, or the trained classes' zero-shot text features with ``init_from_text``."""
        with torch.no_grad():
            if self.config.init_from_text:
                labels = [tuple(ids) for ids in self.config.class_token_ids]
                self.class_weights.copy_(super().encode_labels(labels))
            else:
                self.class_weights.zero_()

    def encode_labels(self, labels: list[tuple[int, ...]]) -> torch.Tensor:
        """Normalised probe rows for trained labels, zero-shot text features for the others, `(labels, dim)`."""
        return self.class_rows_or(labels, self.class_weights, super().encode_labels)
