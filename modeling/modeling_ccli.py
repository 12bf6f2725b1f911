"""CCLI: cross-modal concept learning and inference over a frozen CLIP (Zhang et al., arXiv 2307.15460)."""

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_ccli import CCLIConfig
from .modeling_base import HfZslPreTrainedModel


class CCLIModel(HfZslPreTrainedModel):
    """Zero-shot CLIP plus a concept branch for the trained classes.

    * ``visual_concepts`` `V`, `(num_concepts, dim)`: visual concepts, each initialised by fitting as
      the normalised mean feature of the support images that best match one text concept, then learned.
    * concept activations ``c(x) = exp(-beta * (1 - cos(f(x), v_i)))``, `(images, num_concepts)`.
    * ``concept_inference`` `g`, a linear map `num_concepts → num_classes` (the trained classes).

    A trained label scores ``logit_scale * cos(f(x), t) + alpha * g(c(x))``, with ``g``'s output
    centred over the trained classes; any other label scores zero-shot only.
    """

    config_class = CCLIConfig
    default_templates = ["a photo of a {}."]
    needs_class_names = True

    def __init__(self, config: CCLIConfig):
        super().__init__(config)
        num_classes = len(config.class_names or [])
        self.visual_concepts = nn.Parameter(torch.zeros(config.num_concepts, self.encoder.embed_dim))
        self.concept_inference = nn.Linear(config.num_concepts, num_classes, bias=False)
        nn.init.zeros_(self.concept_inference.weight)

    def text_parameters(self) -> list[torch.nn.Parameter]:
        """Label features are zero-shot text features: they depend on the text tower only."""
        return self.encoder.text_parameters()

    def label_features(self, labels: list[tuple[int, ...]]) -> torch.Tensor:
        """Zero-shot label features `(num_labels, dim)`; nothing text-side is learned, so they are
        computed without autograd and cached during training too."""
        with torch.no_grad():
            return super().label_features(labels)

    def concept_activations(self, image_embeds: torch.Tensor) -> torch.Tensor:
        """Concept-activation representation `(num_images, num_concepts)` of normalised image features
        `(num_images, dim)`: ``exp(-beta * (1 - cos(f(x), v_i)))``, in `(0, 1]`."""
        similarity = image_embeds @ F.normalize(self.visual_concepts, dim=-1).t()
        return torch.exp(-self.config.beta * (1.0 - similarity))

    def concept_logits(self, image_embeds: torch.Tensor) -> torch.Tensor:
        """Concept inference scores of the trained classes `(num_images, num_classes)`, centred per image
        so the branch moves trained classes relative to each other, not above labels it never saw."""
        scores = self.concept_inference(self.concept_activations(image_embeds))
        return scores - scores.mean(dim=-1, keepdim=True)

    def compute_logits(
        self,
        image_embeds: torch.Tensor,
        text_embeds: torch.Tensor,
        labels: list[tuple[int, ...]],
        pixel_values: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Zero-shot logits `(num_images, num_labels)` plus ``alpha`` × the concept scores of trained labels."""
        logits = super().compute_logits(image_embeds, text_embeds, labels)
        indices = self.trained_class_indices(labels)
        columns = [position for position, index in enumerate(indices) if index is not None]
        if not columns or self.config.alpha == 0:
            return logits
        concept = self.concept_logits(image_embeds)[:, [indices[position] for position in columns]]
        return logits.index_add(1, torch.tensor(columns, device=logits.device), self.config.alpha * concept.to(logits.dtype))
