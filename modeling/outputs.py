"""Output dataclass shared by every hf_zsl model."""

from dataclasses import dataclass

import torch
from transformers.utils import ModelOutput


@dataclass
class ZeroShotImageClassifierOutput(ModelOutput):
    """What every hf_zsl model's ``forward`` returns.

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*):
            Cross-entropy of ``logits_per_image`` against ``labels``; present when ``labels`` is given.
        logits_per_image (`torch.FloatTensor` of shape `(num_images, num_labels)`):
            Scores of each image against each candidate label (softmax over the last axis gives
            class probabilities; this is what ``pipeline("zero-shot-image-classification")`` reads).
        logits_per_text (`torch.FloatTensor` of shape `(num_labels, num_images)`):
            The transpose of ``logits_per_image``.
        image_embeds (`torch.FloatTensor` of shape `(num_images, projection_dim)`):
            L2-normalised image features of the frozen image tower.
        text_embeds (`torch.FloatTensor` of shape `(num_labels, projection_dim)`):
            L2-normalised label features (after the method's prompting / ensembling).
    """

    loss: torch.FloatTensor | None = None
    logits_per_image: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    image_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
