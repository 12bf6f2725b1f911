"""Any image PIL opens, as the 8-bit RGB image the image processors expect — or a clear refusal.

A plain ``image.convert("RGB")`` is wrong for several modes found in the wild: it clips 16-bit and
32-bit greyscale (``I;16``, ``I``) to white, turns float images (``F``) black, and drops transparency,
showing whatever colour the transparent pixels happen to hold. :func:`to_rgb` handles them.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageOps
from transformers.image_utils import load_image

BACKGROUND = (255, 255, 255)  # transparent pixels are shown over white, as a browser shows them
INTEGER_TOP = 65535  # I;16* and I images hold 16-bit values
FLOAT_TOP = 1.0  # F images hold values in [0, 1]
# What PIL raises for a file it cannot decode (truncated, not an image, too large, damaged headers).
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def _rescaled(image: Image.Image, top: float, where: str) -> Image.Image:
    """A one-band high-depth image (values in ``[0, top]``) as 8-bit RGB grey."""
    values = np.asarray(image, dtype=np.float64)
    if values.size and (not np.isfinite(values).all() or values.min() < 0 or values.max() > top):
        raise ValueError(
            f"The {image.mode} image at {where} has values from {values.min():g} to {values.max():g}, outside the "
            f"0-{top:g} this mode is read as; save it as an 8-bit image (PNG / JPEG)."
        )
    return Image.fromarray(np.round(values * (255 / top)).astype(np.uint8), "L").convert("RGB")


def _convert(image: Image.Image, mode: str, where: str) -> Image.Image:
    """``image.convert(mode)``, or a ValueError naming ``where`` for a mode PIL cannot convert."""
    try:
        return image.convert(mode)
    except ValueError as error:
        raise ValueError(f"The {image.mode} image at {where} cannot be converted to RGB ({error}); save it as RGB.") from None


def _over_background(image: Image.Image, where: str) -> Image.Image:
    """An image with an alpha band or a transparent colour, composited over :data:`BACKGROUND`."""
    if image.mode == "La":  # premultiplied alpha, which PIL converts only as RGBa
        image = Image.merge("RGBa", [image.getchannel(0)] * 3 + [image.getchannel(1)])
    rgba = _convert(image, "RGBA", where)
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (*BACKGROUND, 255)), rgba).convert("RGB")


def to_rgb(image, where: str) -> Image.Image:
    """``image`` as an 8-bit RGB PIL image.

    * 16- and 32-bit integer greyscale (``I;16``, ``I;16B``, ``I;16L``, ``I;16N``, ``I``): 0-65535 scaled to 0-255;
    * float greyscale (``F``): 0-1 scaled to 0-255;
    * transparency (``RGBA``, ``LA``, ``PA``, ``La``, ``RGBa``, a palette or colour marked transparent):
      composited over white;
    * the other modes (``1``, ``L``, ``P``, ``RGB``, ``RGBX``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``): PIL's conversion.

    Args:
        image: a PIL image.
        where: what names the image in errors (its path, or its row).

    Raises:
        TypeError: if ``image`` is not a PIL image.
        ValueError: naming ``where``, for an empty image, high-depth values outside their range (or not
            finite), or a mode PIL cannot convert.
    """
    if not isinstance(image, Image.Image):
        raise TypeError(f"Expected an image at {where}, got {type(image).__name__}; check the image column or input.")
    if image.width == 0 or image.height == 0:
        raise ValueError(f"The image at {where} is empty ({image.width}x{image.height} pixels); remove or replace it.")
    if image.mode.startswith("I"):
        return _rescaled(image, INTEGER_TOP, where)
    if image.mode == "F":
        return _rescaled(image, FLOAT_TOP, where)
    if image.has_transparency_data:  # an alpha band (RGBA, LA, PA, La, RGBa) or a colour marked transparent
        return _over_background(image, where)
    if image.mode == "RGB":
        return image
    return _convert(image, "RGB", where)


def open_rgb(path: str) -> Image.Image:
    """The image file at ``path`` as RGB (EXIF orientation applied; see :func:`to_rgb`).

    Raises:
        ValueError: naming ``path``, if it cannot be read as an image (or :func:`to_rgb` refuses it).
    """
    try:
        with Image.open(path) as image:
            image.load()
            oriented = ImageOps.exif_transpose(image)
    except DECODE_ERRORS as error:
        raise ValueError(f"Cannot read the image {path} ({type(error).__name__}: {error}); remove or replace it.") from None
    return to_rgb(oriented, path)


def load_rgb(image, timeout: float | None = None) -> Image.Image:
    """A pipeline input as RGB: a PIL image or a local path through :func:`to_rgb`, a URL or base64
    string through ``transformers``' :func:`~transformers.image_utils.load_image`."""
    if isinstance(image, str) and os.path.isfile(image):
        return open_rgb(image)
    if isinstance(image, Image.Image):
        return to_rgb(ImageOps.exif_transpose(image), getattr(image, "filename", "") or "the input image")
    return load_image(image, timeout=timeout)
