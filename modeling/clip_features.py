"""Frozen-CLIP feature helpers: image / text features with transformers 4.x and 5.x returns."""

import torch
import torch.nn.functional as F
from transformers import CLIPModel


def pooled_projection(output) -> torch.Tensor:
    """The projected embedding from ``get_{text,image}_features``.

    transformers 5 returns a ``BaseModelOutputWithPooling`` whose ``pooler_output`` holds the
    projected embedding; transformers 4 returned the tensor itself.
    """
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def check_pixel_values(pixel_values, clip: CLIPModel) -> None:
    """Raise a clear error unless ``pixel_values`` is a `(batch, channels, size, size)` float tensor."""
    vision = clip.config.vision_config
    expected = f"(batch, {vision.num_channels}, {vision.image_size}, {vision.image_size})"
    if not isinstance(pixel_values, torch.Tensor):
        raise TypeError(
            f"pixel_values must be a torch.Tensor of shape {expected}, got {type(pixel_values).__name__}. "
            "Prepare images with the model's image processor."
        )
    if not pixel_values.is_floating_point():
        raise TypeError(f"pixel_values must be a float tensor, got dtype {pixel_values.dtype}.")
    shape = tuple(pixel_values.shape)
    if (
        pixel_values.ndim != 4
        or shape[1] != vision.num_channels
        or shape[2] != vision.image_size
        or shape[3] != vision.image_size
    ):
        raise ValueError(
            f"pixel_values has shape {shape}, expected {expected}. Prepare images with the model's "
            "image processor (it resizes, crops and converts grayscale / RGBA to RGB)."
        )


def image_features(clip: CLIPModel, pixel_values: torch.Tensor) -> torch.Tensor:
    """L2-normalised image embeddings, shape `(batch, projection_dim)`."""
    check_pixel_values(pixel_values, clip)
    pixel_values = pixel_values.to(dtype=clip.visual_projection.weight.dtype)
    return F.normalize(pooled_projection(clip.get_image_features(pixel_values=pixel_values)), dim=-1)


def text_features(
    clip: CLIPModel, input_ids: torch.Tensor, attention_mask: torch.Tensor, chunk_size: int = 1024
) -> torch.Tensor:
    """L2-normalised text embeddings of already-composed prompts, shape `(num_prompts, projection_dim)`.

    Prompts are encoded in chunks of ``chunk_size`` rows so a 1000-label x 7-template set does not
    materialise one huge attention tensor.
    """
    chunks = [
        pooled_projection(clip.get_text_features(input_ids=ids, attention_mask=mask))
        for ids, mask in zip(input_ids.split(chunk_size), attention_mask.split(chunk_size))
    ]
    return F.normalize(torch.cat(chunks), dim=-1)
