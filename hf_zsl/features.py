"""The frozen-encoder feature cache: every image goes through the image tower once.

Features are keyed by (base encoder weights, image preprocessing, dataset fingerprint, augmentation
views and seed) and stored as safetensors under ``$HF_ZSL_CACHE/features`` (default
``~/.cache/hf_zsl``), so every feature-level method and every evaluation reads the same tensors.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings

import datasets
import torch
from PIL import Image
from tqdm.auto import tqdm

from .augmentation import CROP_SCALE, augment
from .cache import cache_root, discard, load_verified, save_verified
from .images import DECODE_ERRORS, to_rgb
from .logging import get_logger, progress_bars_enabled
from .modeling.checkpoint import state_digest
from .modeling.modeling_base import HfZslPreTrainedModel

logger = get_logger(__name__)


# Part of every feature key: features computed before images were converted by hf_zsl.images.to_rgb
# (a plain convert("RGB"), wrong for 16-bit, float and transparent images) are never reused.
RGB_CONVERSION = "rgb=to_rgb"


def encoder_fingerprint(model: HfZslPreTrainedModel) -> str:
    """Digest of the image tower's weights and the image preprocessing (memoised on the model)."""
    cached = getattr(model, "_encoder_fingerprint", None)
    if cached is None:
        vision = model.encoder.vision_state_dict()
        processor = model.image_processor.to_dict() if model.image_processor is not None else {}
        cached = hashlib.sha256((state_digest(vision) + json.dumps(processor, sort_keys=True, default=str)).encode()).hexdigest()
        model._encoder_fingerprint = cached
    return cached


def _row(image, index: int) -> str:
    """How errors name row ``index``: with its file path when the image came from a file."""
    path = getattr(image, "filename", "")
    return f"row {index} ({path})" if path else f"row {index}"


def _unreadable(dataset: datasets.Dataset, start: int, stop: int, image_column: str) -> list[str]:
    """The rows among ``start`` to ``stop - 1`` whose image file or bytes PIL cannot decode, with their paths."""
    if not isinstance(dataset.features.get(image_column), datasets.Image):
        return []
    raw = dataset.select(range(start, min(stop, len(dataset)))).cast_column(image_column, datasets.Image(decode=False))
    found = []
    for index, cell in enumerate(raw[image_column], start):
        source = io.BytesIO(cell["bytes"]) if cell.get("bytes") else cell.get("path")
        try:
            with Image.open(source) as image:
                image.load()
        except DECODE_ERRORS as error:
            found.append(f"row {index} ({cell.get('path') or 'embedded bytes'}: {type(error).__name__})")
    return found


def read_images(dataset: datasets.Dataset, start: int, stop: int, image_column: str = "image") -> list:
    """The RGB PIL images of rows ``start`` to ``stop - 1`` of ``dataset`` (:func:`hf_zsl.images.to_rgb`).

    Raises:
        ValueError: naming the rows and their files, if an image cannot be decoded or converted to RGB.
        TypeError: naming the row, if a row holds no image.
    """
    try:
        rows = dataset[start:stop][image_column]
    except DECODE_ERRORS as error:
        bad = _unreadable(dataset, start, stop, image_column)
        raise ValueError(
            f"Images in rows {start}-{stop - 1} could not be decoded ({error}); unreadable: {', '.join(bad) or 'unknown'}. "
            "Remove or replace the unreadable files."
        ) from None
    return [to_rgb(image, _row(image, start + i)) for i, image in enumerate(rows)]


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
    crop_scale: float = CROP_SCALE[0],
) -> torch.Tensor:
    """L2-normalised image features of every row of ``dataset``, shape `(len(dataset), dim)` (raw
    embeddings for a model whose ``normalises_image_features`` is ``False``).

    Computed once per (encoder, preprocessing, dataset fingerprint, augmentation) and then read from
    the cache.

    Args:
        augment_views: if positive, encode this many augmented views of every image instead
            (:func:`hf_zsl.augmentation.augment`, applied to the PIL image before the image
            processor); the result then has shape `(augment_views, len(dataset), dim)`.
        augment_seed: seed of the augmentations (view ``v`` of row ``i`` depends only on
            ``(augment_seed, v, i)``).
        crop_scale: smallest area fraction of the views' random resized crops.

    A cache entry that is damaged (unreadable, not matching the digest written with it, of the wrong
    shape or not finite) is removed with a warning and computed again; a cache that cannot be written
    (full disk, read-only) only warns.

    Raises:
        ValueError: if ``image_column`` is missing, an image cannot be decoded (naming the rows; no
            features are cached then), or the encoder gives NaN or infinite features.
    """
    if image_column not in dataset.column_names:
        raise ValueError(f"Dataset has no image column {image_column!r}; columns: {dataset.column_names}.")
    if augment_views < 0:
        raise ValueError(f"augment_views must be 0 (no augmentation) or a positive count, got {augment_views}.")
    augmentation = f"|augment={augment_views},{augment_seed}" if augment_views else ""
    if augment_views and crop_scale != CROP_SCALE[0]:  # entries of the default crop keep their keys
        augmentation += f",crop={crop_scale}"
    raw = "" if model.normalises_image_features else "|raw"  # the unnormalised embeddings (logistic linear probe)
    key = f"{encoder_fingerprint(model)}|{dataset._fingerprint}|{image_column}{augmentation}|{RGB_CONVERSION}{raw}"
    key = hashlib.sha256(key.encode()).hexdigest()
    path = cache_root("features", f"{key[:32]}.safetensors")
    rows = (augment_views, len(dataset)) if augment_views else (len(dataset),)
    cached = load_verified(path)
    if cached is not None:
        problem = _feature_problem(cached.get("features"), rows)
        if problem is None:
            return cached["features"]
        discard(path, problem)
    features = _encode(model, dataset, image_column, batch_size, progress, augment_views, augment_seed, crop_scale)
    features = features if augment_views else features[0]
    problem = _feature_problem(features, rows)
    if problem is not None:
        raise ValueError(
            f"The image encoder gave {problem} for {len(dataset)} images; check the base model's weights "
            "(a diverged or half-converted checkpoint) and its dtype."
        )
    try:
        save_verified({"features": features}, path)
    except OSError as error:  # the cache only saves time: a full or read-only cache must not stop the run
        warnings.warn(f"Could not cache image features at {path} ({error}); they will be computed again next time.")
    return features


def _feature_problem(features: torch.Tensor | None, rows: tuple[int, ...]) -> str | None:
    """What is wrong with image ``features`` expected to have shape `(*rows, dim)` (``None``: nothing)."""
    if features is None:
        return "no 'features' tensor"
    if features.ndim != len(rows) + 1 or tuple(features.shape[:-1]) != rows:
        return f"features of shape {tuple(features.shape)}, not {(*rows, 'dim')}"
    if not torch.isfinite(features).all():
        return f"{int((~torch.isfinite(features)).sum())} NaN or infinite feature values"
    return None


def _encode(model, dataset, image_column, batch_size, progress, augment_views, augment_seed, crop_scale) -> torch.Tensor:
    """Encode every row of ``dataset`` (``augment_views`` augmented views of it, or the image itself once):
    `(max(augment_views, 1), len(dataset), dim)`."""
    views_text = f" x {augment_views} augmented views" if augment_views else ""
    logger.info("extracting image features of %d images%s", len(dataset), views_text)
    chunks = []
    with torch.inference_mode():
        for start, images in image_batches(dataset, image_column, batch_size, progress, "image features"):
            views = [
                [augment(image, augment_seed, v, start + i, crop_scale) for i, image in enumerate(images)]
                for v in range(augment_views)
            ]
            encoded = []
            for view in views or [images]:
                inputs = model.image_processor(images=view, return_tensors="pt")
                encoded.append(model.encode_images(**{k: v.to(model.device) for k, v in inputs.items()}).float().cpu())
            chunks.append(torch.stack(encoded))
    if not chunks:
        return torch.zeros(max(augment_views, 1), 0, model.encoder.embed_dim)
    return torch.cat(chunks, dim=1)
