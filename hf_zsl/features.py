"""The frozen-encoder feature cache: every image goes through the image tower once.

Features are keyed by (base encoder weights, image preprocessing, dataset fingerprint, augmentation
views and seed) and stored as safetensors under ``$HF_ZSL_CACHE/features`` (default
``~/.cache/hf_zsl``), so every feature-level method and every evaluation reads the same tensors.
"""

from __future__ import annotations

import hashlib
import json
import os

import datasets
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from .augmentation import augment
from .cache import cache_root
from .logging import get_logger, progress_bars_enabled
from .modeling.checkpoint import state_digest
from .modeling.modeling_base import HfZslPreTrainedModel

logger = get_logger(__name__)


def encoder_fingerprint(model: HfZslPreTrainedModel) -> str:
    """Digest of the image tower's weights and the image preprocessing (memoised on the model)."""
    cached = getattr(model, "_encoder_fingerprint", None)
    if cached is None:
        vision = {k: v for k, v in model.clip.state_dict().items() if k.startswith(("vision_model.", "visual_projection."))}
        processor = model.image_processor.to_dict() if model.image_processor is not None else {}
        cached = hashlib.sha256((state_digest(vision) + json.dumps(processor, sort_keys=True, default=str)).encode()).hexdigest()
        model._encoder_fingerprint = cached
    return cached


def _as_rgb(image, index: int):
    """``image`` converted to RGB (grayscale / RGBA / palette images are common in the wild)."""
    if not hasattr(image, "convert"):
        raise ValueError(f"Row {index} holds {type(image).__name__}, not an image; check the image column.")
    return image.convert("RGB")


def read_images(dataset: datasets.Dataset, start: int, stop: int, image_column: str = "image") -> list:
    """The RGB PIL images of rows ``start`` to ``stop - 1`` of ``dataset``.

    Raises:
        ValueError: naming the rows, if an image cannot be decoded or a row holds no image.
    """
    try:
        rows = dataset[start:stop][image_column]
    except (OSError, ValueError) as error:
        raise ValueError(
            f"Images in rows {start}-{stop - 1} could not be decoded ({error}). Remove or replace the unreadable files."
        ) from None
    return [_as_rgb(image, start + i) for i, image in enumerate(rows)]


def image_batches(
    dataset: datasets.Dataset, image_column: str = "image", batch_size: int = 64, progress: bool = False, desc: str = "images"
):
    """Yield ``(start, images)``: consecutive batches of ``dataset``'s RGB PIL images (see :func:`read_images`).

    ``progress``: draw a bar (images done, rate, ETA) on stderr, unless :func:`hf_zsl.logging.disable_progress_bars`.
    """
    if image_column not in dataset.column_names:
        raise ValueError(f"Dataset has no image column {image_column!r}; columns: {dataset.column_names}.")
    with tqdm(total=len(dataset), desc=desc, unit="img", disable=not (progress and progress_bars_enabled()), leave=False) as bar:
        for start in range(0, len(dataset), batch_size):
            images = read_images(dataset, start, start + batch_size, image_column)
            yield start, images
            bar.update(len(images))


def image_features(
    model: HfZslPreTrainedModel,
    dataset: datasets.Dataset,
    image_column: str = "image",
    batch_size: int = 64,
    progress: bool = True,
    augment_views: int = 0,
    augment_seed: int = 0,
) -> torch.Tensor:
    """L2-normalised image features of every row of ``dataset``, shape `(len(dataset), dim)`.

    Computed once per (encoder, preprocessing, dataset fingerprint, augmentation) and then read from
    the cache.

    Args:
        augment_views: if positive, encode this many augmented views of every image instead
            (:func:`hf_zsl.augmentation.augment`, applied to the PIL image before the image
            processor); the result then has shape `(augment_views, len(dataset), dim)`.
        augment_seed: seed of the augmentations (view ``v`` of row ``i`` depends only on
            ``(augment_seed, v, i)``).

    Raises:
        ValueError: if ``image_column`` is missing or an image cannot be decoded (naming the rows; no
            features are cached then).
    """
    if image_column not in dataset.column_names:
        raise ValueError(f"Dataset has no image column {image_column!r}; columns: {dataset.column_names}.")
    if augment_views < 0:
        raise ValueError(f"augment_views must be 0 (no augmentation) or a positive count, got {augment_views}.")
    augmentation = f"|augment={augment_views},{augment_seed}" if augment_views else ""
    key = f"{encoder_fingerprint(model)}|{dataset._fingerprint}|{image_column}{augmentation}"
    key = hashlib.sha256(key.encode()).hexdigest()
    path = cache_root("features", f"{key[:32]}.safetensors")
    if os.path.exists(path):
        return load_file(path)["features"]

    views_text = f" x {augment_views} augmented views" if augment_views else ""
    logger.info("extracting image features of %d images%s", len(dataset), views_text)
    chunks = []
    device = model.device
    with torch.inference_mode():
        for start, images in image_batches(dataset, image_column, batch_size, progress, "image features"):
            views = [
                [augment(image, augment_seed, v, start + i) for i, image in enumerate(images)]
                for v in range(augment_views)
            ]
            encoded = []
            for view in views or [images]:
                pixels = model.image_processor(images=view, return_tensors="pt")["pixel_values"].to(device)
                encoded.append(model.encode_images(pixels).float().cpu())
            chunks.append(torch.stack(encoded))
    dim = model.config.clip_config.projection_dim
    features = torch.cat(chunks, dim=1) if chunks else torch.zeros(max(augment_views, 1), 0, dim)
    if not augment_views:
        features = features[0]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    staging = f"{path}.{os.getpid()}.tmp"  # processes of a distributed run may write at once
    save_file({"features": features.contiguous()}, staging)
    os.replace(staging, path)
    return features
