"""Tiny random-weight dual encoders of every supported family, built offline with their own kind of
tokenizer: for the test matrix per family and for quick checks.

Each family keeps the quirks the adapters must handle: SigLIP's SentencePiece tokenizer (no BOS, EOS
appended, 64 text positions, padded to 64), SigLIP 2's Gemma-style BPE (lower-cased, no dummy prefix,
left padding) and patch-sequence images, Chinese-CLIP's WordPiece ``[CLS] … [SEP]`` with a BERT tower.
"""

from __future__ import annotations

import torch
from transformers import (
    BertTokenizer,
    ChineseCLIPConfig,
    ChineseCLIPModel,
    MetaClip2Config,
    MetaClip2Model,
    SiglipModel,
    Siglip2Config,
    Siglip2Model,
    Siglip2Tokenizer,
)
from transformers.models.chinese_clip.image_processing_pil_chinese_clip import ChineseCLIPImageProcessorPil
from transformers.models.siglip2.image_processing_pil_siglip2 import Siglip2ImageProcessorPil

from .tiny import (
    BASIC_WORDS,
    build_tiny_clip,
    siglip_image_processor,
    tiny_clip_config,
    tiny_siglip_config,
)
from .tokenizer import PUNCTUATION, SIGLIP_TEXT_LENGTH, build_siglip_tokenizer

FAMILIES = ("clip", "metaclip_2", "siglip", "siglip2", "chinese_clip")
_TOWER = dict(hidden_size=32, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2)


def _gemma_tokenizer(words) -> Siglip2Tokenizer:
    """A SigLIP 2 tokenizer (Gemma-style BPE, no dummy prefix) whose words, with or without a leading
    ``▁``, are single pieces; special ids as Gemma's (pad 0, eos 1, bos 2, unk 3, mask 4)."""
    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<mask>": 4}
    letters = sorted({c for w in words for c in w} | set(PUNCTUATION) | {"▁"})
    for symbol in letters:
        vocab.setdefault(symbol, len(vocab))
    merges: list[tuple[str, str]] = []
    for spelling in [f"▁{w}" for w in words] + list(words):  # word-start merges rank first
        for end in range(2, len(spelling) + 1):
            pair = (spelling[: end - 1], spelling[end - 1])
            if pair not in merges:
                merges.append(pair)
                vocab.setdefault("".join(pair), len(vocab))
    return Siglip2Tokenizer(
        vocab=vocab, merges=merges, add_bos_token=False, add_eos_token=True, model_max_length=SIGLIP_TEXT_LENGTH
    )


def _wordpiece_tokenizer(words) -> BertTokenizer:
    vocab = {token: i for i, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *PUNCTUATION])}
    for word in words:
        vocab.setdefault(word, len(vocab))
    return BertTokenizer(vocab=vocab, model_max_length=52)


def _siglip_text(tokenizer) -> dict:
    """A SigLIP-family text tower over ``tokenizer``: 64 positions, the tokenizer's pad and end ids."""
    return dict(_TOWER, vocab_size=len(tokenizer), max_position_embeddings=SIGLIP_TEXT_LENGTH,
                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)


def build_tiny_base(family: str, words=BASIC_WORDS, seed: int = 0):
    """A random-weight tiny dual encoder of ``family`` (:data:`FAMILIES`) with tokenizer and image processor.

    Returns:
        ``(model, tokenizer, image_processor)`` at 32 px, 32-wide towers.
    """
    words = sorted({w.lower() for w in words})
    torch.manual_seed(seed)
    if family == "clip":
        return build_tiny_clip(words, seed=seed)
    if family == "metaclip_2":
        _, tokenizer, processor = build_tiny_clip(words, seed=seed)
        config = tiny_clip_config(
            vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        return MetaClip2Model(MetaClip2Config(**config.to_dict())).eval(), tokenizer, processor
    if family == "siglip":
        tokenizer = build_siglip_tokenizer(words)
        config = tiny_siglip_config(len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id)
        return SiglipModel(config).eval(), tokenizer, siglip_image_processor(32)
    if family == "siglip2":
        tokenizer = _gemma_tokenizer(words)
        config = Siglip2Config(text_config=_siglip_text(tokenizer), vision_config=dict(_TOWER, patch_size=8, num_patches=16))
        processor = Siglip2ImageProcessorPil(patch_size=8, max_num_patches=16)
        return Siglip2Model(config).eval(), tokenizer, processor
    if family == "chinese_clip":
        tokenizer = _wordpiece_tokenizer(words)
        config = ChineseCLIPConfig(
            text_config=dict(_TOWER, vocab_size=len(tokenizer), max_position_embeddings=64),
            vision_config=dict(_TOWER, image_size=32, patch_size=8, projection_dim=32),
            projection_dim=32,
        )
        processor = ChineseCLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
        return ChineseCLIPModel(config).eval(), tokenizer, processor
    raise ValueError(f"Unknown family {family!r}; choose one of {', '.join(FAMILIES)}.")


def save_tiny_base(folder: str, family: str, **kwargs) -> str:
    """Build a tiny ``family`` base (:func:`build_tiny_base`) and save model, tokenizer and processor to ``folder``."""
    for part in build_tiny_base(family, **kwargs):
        part.save_pretrained(folder)
    return folder


__all__ = ["FAMILIES", "build_tiny_base", "save_tiny_base"]
