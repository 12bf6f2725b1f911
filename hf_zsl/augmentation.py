"""Seeded image augmentation for augmented feature caches (PIL + numpy; no torchvision).

The few-shot cache of Tip-Adapter is built from several augmented views of each support image:
``RandomResizedCrop(scale=(0.5, 1), ratio=(3/4, 4/3))`` followed by a random horizontal flip (CoOp's
training views crop from ``scale=(0.08, 1)``: the ``min_scale`` argument). Each
view's randomness is drawn from ``(seed, view, row)`` alone, so a row's views do not depend on the
batch it was encoded in, and the same arguments always give the same pixels.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageOps

CROP_SCALE = (0.5, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)
FLIP_PROBABILITY = 0.5


def crop_box(
    width: int, height: int, rng: np.random.Generator, min_scale: float = CROP_SCALE[0]
) -> tuple[int, int, int, int]:
    """A random-resized-crop box ``(left, top, right, bottom)`` with torchvision's sampling rule.

    Area fraction uniform in ``(min_scale, 1)`` (default :data:`CROP_SCALE`), log aspect ratio uniform in :data:`CROP_RATIO`;
    ten tries, then the largest centred box whose ratio lies in the range.
    """
    area = width * height
    log_ratio = (math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]))
    for _ in range(10):
        target = area * rng.uniform(min_scale, CROP_SCALE[1])
        ratio = math.exp(rng.uniform(*log_ratio))
        w, h = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            return left, top, left + w, top + h
    ratio = width / height
    if ratio < CROP_RATIO[0]:
        w, h = width, round(width / CROP_RATIO[0])
    elif ratio > CROP_RATIO[1]:
        w, h = round(height * CROP_RATIO[1]), height
    else:
        w, h = width, height
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


def augment(image: Image.Image, seed: int, view: int, row: int, min_scale: float = CROP_SCALE[0]) -> Image.Image:
    """One augmented view of ``image``: a random resized crop (area fraction in ``(min_scale, 1)``),
    resized back to the image's own size (bicubic), then flipped horizontally with probability 1/2.

    Resizing back to the original size (rather than to a fixed square) leaves the image
    processor's resize and centre crop to do exactly what they do for un-augmented images; for
    square images it is torchvision's ``RandomResizedCrop`` at the input resolution.
    """
    rng = np.random.default_rng([seed, view, row])
    view_image = image.resize(image.size, Image.Resampling.BICUBIC, box=crop_box(*image.size, rng, min_scale))
    return ImageOps.mirror(view_image) if rng.uniform() < FLIP_PROBABILITY else view_image
