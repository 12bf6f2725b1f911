"""Linear probe over frozen CLIP image features: a cosine classifier, or the CLIP paper's logistic regression."""

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_linear_probe import FORMS, LinearProbeConfig
from .modeling_base import HfZslPreTrainedModel


class LinearProbeModel(HfZslPreTrainedModel):
    """A linear classifier ``W`` (classes × dim) on the frozen image features, in one of two forms
    (``config.form``):

    - ``cosine`` (no bias, L2-normalised features): scores are ``logit_scale * cos(x, w_c)``; the probe's
      rows live in the same space as text features, so a label that was not trained falls back to its
      zero-shot text feature and both kinds of label compete on one scale. Without a bias this is also
      the form of DFZSL's "server" classifier (a logistic regression without intercept, queried as a
      cosine classifier).
    - ``logistic`` (the CLIP paper's probe): ``x · w_c + b_c`` on the raw image embeddings ``x`` (the
      model's image features are then unnormalised: :attr:`normalises_image_features` is ``False``); a
      label that was not trained gets its zero-shot score ``logit_scale * cos(x, t)``, on another scale
      than the probe's logits.
    """

    config_class = LinearProbeConfig
    default_templates = ["a photo of a {}."]
    needs_class_names = True

    def __init__(self, config: LinearProbeConfig):
        if config.form not in FORMS:
            raise ValueError(f"LinearProbeConfig.form must be one of {', '.join(FORMS)}; got {config.form!r}.")
        super().__init__(config)
        num_classes = len(config.class_names or [])
        self.class_weights = nn.Parameter(torch.zeros(num_classes, self.encoder.embed_dim))
        if config.form == "logistic":
            self.class_bias = nn.Parameter(torch.zeros(num_classes))

    @property
    def normalises_image_features(self) -> bool:
        return self.config.form != "logistic"

    def encode_images(self, pixel_values: torch.Tensor, **image_inputs) -> torch.Tensor:
        """The frozen image tower's features `(batch, dim)`: L2-normalised, raw for the logistic form."""
        return self.encoder.image_features(pixel_values, normalize=self.normalises_image_features, **image_inputs)

    def reset_class_weights(self) -> None:
        """Zero weights, or the trained classes' zero-shot text features with ``init_from_text``."""
        with torch.no_grad():
            if self.config.init_from_text:
                labels = [tuple(ids) for ids in self.config.class_token_ids]
                self.class_weights.copy_(super().encode_labels(labels))
            else:
                self.class_weights.zero_()

    def set_logistic(self, coef: torch.Tensor, intercept: torch.Tensor) -> None:
        """Load a fitted logistic regression: ``coef`` `(classes, dim)`, ``intercept`` `(classes,)`."""
        with torch.no_grad():
            self.class_weights.copy_(coef.to(self.class_weights))
            self.class_bias.copy_(intercept.to(self.class_bias))

    def encode_labels(self, labels: list[tuple[int, ...]]) -> torch.Tensor:
        """Normalised probe rows for trained labels, zero-shot text features for the others, `(labels, dim)`."""
        return self.class_rows_or(labels, self.class_weights, super().encode_labels)

    def compute_logits(self, image_embeds, text_embeds, labels, pixel_values=None) -> torch.Tensor:
        """Cosine form: the base's scaled cosine scores. Logistic form: ``x · w_c + b_c`` for trained labels
        (``x`` raw) and the zero-shot scores of the normalised ``x`` for the others, `(num_images, num_labels)`."""
        if self.config.form != "logistic":
            return super().compute_logits(image_embeds, text_embeds, labels)
        logits = super().compute_logits(F.normalize(image_embeds, dim=-1), text_embeds, labels)
        indices = self.trained_class_indices(labels)
        columns = [column for column, index in enumerate(indices) if index is not None]
        if columns:
            rows = torch.tensor([indices[column] for column in columns], device=image_embeds.device)
            probe = image_embeds @ self.class_weights[rows].t() + self.class_bias[rows]
            logits = logits.index_copy(1, torch.tensor(columns, device=logits.device), probe.to(logits.dtype))
        return logits
