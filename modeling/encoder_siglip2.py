"""SigLIP 2 adapter: SigLIP's scoring, a Gemma tokenizer, and variable-resolution (NaFlex) images."""

import torch
from transformers import Siglip2Model

from .encoder_siglip import SiglipEncoder


class Siglip2Encoder(SiglipEncoder):
    """SigLIP 2 (Tschannen et al., 2025). Text as SigLIP (64 tokens, last-position pooling) but with
    Gemma's tokenizer, which lower-cases and has no dummy prefix (a word after a space has other ids
    than the same word starting the text: labels are used in their in-prompt form). Images are
    patch sequences: ``pixel_values`` `(batch, max_patches, channels * patch²)` with
    ``pixel_attention_mask`` `(batch, max_patches)` and ``spatial_shapes`` `(batch, 2)`."""

    family = "siglip2"
    display_name = "SigLIP 2"
    model_class = Siglip2Model
    model_types = ("siglip2",)
    image_input_names = ("pixel_values", "pixel_attention_mask", "spatial_shapes")
    no_split_modules = ("Siglip2EncoderLayer",)
    variable_resolution = True

    @property
    def image_size(self) -> None:
        return None

    def check_image_inputs(self, pixel_values, pixel_attention_mask=None, spatial_shapes=None, **image_inputs) -> None:
        vision = self.model.config.vision_config
        width = vision.num_channels * vision.patch_size**2
        expected = f"(batch, patches, {width})"
        if not isinstance(pixel_values, torch.Tensor) or not pixel_values.is_floating_point():
            raise TypeError(
                f"pixel_values must be a torch.Tensor of floats, shape {expected}, got {type(pixel_values).__name__}. "
                "Prepare images with the model's image processor."
            )
        if pixel_values.ndim != 3 or pixel_values.shape[-1] != width:
            raise ValueError(
                f"pixel_values has shape {tuple(pixel_values.shape)}, expected {expected} (SigLIP 2 takes patch "
                "sequences). Prepare images with the model's image processor."
            )
        if pixel_attention_mask is None or spatial_shapes is None:
            raise ValueError(
                "SigLIP 2 needs the image processor's pixel_attention_mask and spatial_shapes along with "
                "pixel_values: pass every output of the image processor."
            )
