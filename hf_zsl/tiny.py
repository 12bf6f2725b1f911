"""Small CLIPs with random weights, built offline: for tests, benchmarks and as the starting
point of the embedded models' pretraining (with the SigLIP config and preprocessing alike)."""

from __future__ import annotations

import torch
from transformers import CLIPConfig, CLIPModel, SiglipConfig
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

from .tokenizer import SIGLIP_TEXT_LENGTH, build_clip_tokenizer

# Words the tests and quick starts use, so their prompts tokenize into whole words.
BASIC_WORDS = (
    "a an the this is photo of in on with and small large big tiny red green blue yellow purple orange "
    "black white pink brown gray grey cat dog bird car tree flower house circle square triangle star "
    "hexagon cross heart diamond ring solid outline outlined background plain noise striped stripes checkered "
    "itap bad origami video game art"
).split()


def tiny_clip_config(
    vocab_size: int,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    image_size: int = 32,
    patch_size: int = 8,
    projection_dim: int = 32,
    max_text_length: int = 77,
    bos_token_id: int = 0,
    eos_token_id: int = 1,
    pad_token_id: int = 1,
) -> CLIPConfig:
    """A :class:`CLIPConfig` of a few hundred thousand parameters (text and image towers alike).

    The special-token ids default to those of :func:`hf_zsl.tokenizer.build_clip_tokenizer`.
    """
    tower = dict(
        hidden_size=hidden_size,
        intermediate_size=4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        projection_dim=projection_dim,
    )
    return CLIPConfig(
        text_config=dict(
            tower,
            vocab_size=vocab_size,
            max_position_embeddings=max_text_length,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            pad_token_id=pad_token_id,
        ),
        vision_config=dict(tower, image_size=image_size, patch_size=patch_size),
        projection_dim=projection_dim,
    )


def tiny_siglip_config(
    vocab_size: int,
    pad_token_id: int,
    eos_token_id: int,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    image_size: int = 32,
    patch_size: int = 8,
) -> SiglipConfig:
    """A :class:`SiglipConfig` with towers as :func:`tiny_clip_config`'s and :data:`SIGLIP_TEXT_LENGTH` text positions.

    SigLIP's embeddings are ``hidden_size`` wide (the text head projects to the vision width).
    """
    tower = dict(
        hidden_size=hidden_size,
        intermediate_size=4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
    )
    return SiglipConfig(
        text_config=dict(
            tower,
            vocab_size=vocab_size,
            max_position_embeddings=SIGLIP_TEXT_LENGTH,
            pad_token_id=pad_token_id,
            eos_token_id=eos_token_id,
            bos_token_id=None,  # SigLIP's tokenizer has no BOS
        ),
        vision_config=dict(tower, image_size=image_size, patch_size=patch_size),
    )


def siglip_image_processor(image_size: int) -> SiglipImageProcessorPil:
    """SigLIP preprocessing (resize to ``image_size`` square, mean / std 0.5)."""
    return SiglipImageProcessorPil(size={"height": image_size, "width": image_size})


def clip_image_processor(image_size: int) -> CLIPImageProcessorPil:
    """CLIP preprocessing (shortest-edge resize, centre crop, CLIP mean/std) at ``image_size``."""
    return CLIPImageProcessorPil(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )


def build_tiny_clip(words=BASIC_WORDS, seed: int = 0, **config_kwargs):
    """A random-weight tiny CLIP with its tokenizer and image processor.

    Args:
        words: the tokenizer's whole-word vocabulary (see :func:`build_clip_tokenizer`).
        seed: seeds the weight initialisation.
        **config_kwargs: sizes for :func:`tiny_clip_config`.

    Returns:
        ``(model, tokenizer, image_processor)``; the text config's special-token ids match the
        tokenizer's.
    """
    max_text_length = config_kwargs.get("max_text_length", 77)
    tokenizer = build_clip_tokenizer(words, model_max_length=max_text_length)
    config = tiny_clip_config(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **config_kwargs,
    )
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    return model, tokenizer, clip_image_processor(config.vision_config.image_size)


def save_tiny_clip(folder: str, **kwargs) -> str:
    """Build a tiny CLIP (:func:`build_tiny_clip`) and save model, tokenizer and processor to ``folder``."""
    model, tokenizer, processor = build_tiny_clip(**kwargs)
    for part in (model, tokenizer, processor):
        part.save_pretrained(folder)
    return folder
