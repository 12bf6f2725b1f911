"""Rendering a :class:`~hf_zsl.shapes.world.Scene` to an RGB array (numpy + a PIL mask).

The background is computed with numpy on a pixel grid, the shape's coverage mask is drawn by PIL at
twice the resolution and box-filtered down (anti-aliasing), and the lighting is an affine colour
transform of the whole image. A 32 px image takes a few tens of microseconds.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image, ImageDraw

from .world import COLOURS, Scene

SUPERSAMPLE = 2
OUTLINE_WIDTH = 0.07  # outline stroke as a fraction of the image side


def _regular(n: int, inner: float | None = None, start: float = -90.0) -> np.ndarray:
    """Vertices ``(m, 2)`` of a regular ``n``-gon (or ``n``-pointed star with ``inner`` radius)."""
    count = 2 * n if inner else n
    angles = np.deg2rad(start + 360.0 * np.arange(count) / count)
    radii = np.where(np.arange(count) % 2, inner or 1.0, 1.0) if inner else np.ones(count)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _cross(arm: float = 0.36) -> np.ndarray:
    """A plus sign with arms ``2 * arm`` wide."""
    a, b = arm, 1.0
    top_right = [(-a, -b), (a, -b), (a, -a), (b, -a)]
    bottom_left = [(-x, -y) for x, y in top_right]
    return np.array(top_right + [(b, a), (a, a)] + bottom_left + [(-b, -a), (-a, -a)])


def _heart(points: int = 28) -> np.ndarray:
    """The classic parametric heart curve, scaled to radius 1."""
    t = np.linspace(0, 2 * np.pi, points, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    xy = np.stack([x, y + 2.5], axis=1)
    return xy / np.abs(xy).max()


def _crescent(offset: float = 0.45, inner: float = 0.85, points: int = 16) -> np.ndarray:
    """The unit disc minus a disc of radius ``inner`` shifted right by ``offset``, opening right."""
    x = (1 + offset**2 - inner**2) / (2 * offset)  # where the two circles cross
    outer_start = math.atan2(math.sqrt(1 - x * x), x)
    inner_start = math.atan2(math.sqrt(1 - x * x), x - offset)
    outer = np.linspace(outer_start, 2 * np.pi - outer_start, points)
    back = np.linspace(2 * np.pi - inner_start, inner_start, points)
    outer_arc = np.stack([np.cos(outer), np.sin(outer)], 1)
    inner_arc = np.stack([offset + inner * np.cos(back), inner * np.sin(back)], 1)
    xy = np.concatenate([outer_arc, inner_arc])
    return xy + np.array([0.2, 0.0])  # roughly centre the visible mass


# Unit outlines (radius ~1, pointing up; image y grows downwards). The circle is drawn as an ellipse.
POLYGONS: dict[str, np.ndarray] = {
    "square": _regular(4, start=-45.0) * 0.85,
    "triangle": _regular(3) + np.array([0.0, 0.15]),
    "star": _regular(5, inner=0.45),
    "hexagon": _regular(6, start=0.0),
    "pentagon": _regular(5),
    "cross": _cross(),
    "heart": _heart(),
    "diamond": np.array([(0.0, -1.0), (0.62, 0.0), (0.0, 1.0), (-0.62, 0.0)]),
    "crescent": _crescent(),
}


def _hue_rotation(degrees: float) -> np.ndarray:
    """The luminance-preserving hue-rotation matrix (as in the CSS ``hue-rotate`` filter)."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array(
        [
            [0.213 + 0.787 * c - 0.213 * s, 0.715 - 0.715 * c - 0.715 * s, 0.072 - 0.072 * c + 0.928 * s],
            [0.213 - 0.213 * c + 0.143 * s, 0.715 + 0.285 * c + 0.140 * s, 0.072 - 0.072 * c - 0.283 * s],
            [0.213 - 0.213 * c - 0.787 * s, 0.715 - 0.715 * c + 0.715 * s, 0.072 + 0.928 * c + 0.072 * s],
        ]
    )


# Lightings as affine colour maps ``rgb @ matrix.T + offset`` on [0, 255] values.
LIGHTING_MAPS: dict[str, tuple[np.ndarray, np.ndarray]] = {
    "neutral": (np.eye(3), np.zeros(3)),
    "warm": (np.diag([1.1, 0.92, 0.55]), np.array([30.0, 12.0, 0.0])),
    "cool": (np.diag([0.6, 0.9, 1.1]), np.array([0.0, 10.0, 35.0])),
    "hue_shift": (_hue_rotation(40.0), np.zeros(3)),
}


@functools.lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(rows, cols)`` as fractions of the side, each of shape `(size, size)`."""
    centres = (np.arange(size, dtype=np.float32) + 0.5) / size
    return np.meshgrid(centres, centres, indexing="ij")


@functools.lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    """A fixed `(256, 256)` field of standard normal noise that ``noise`` backgrounds crop from."""
    return np.random.default_rng(1234).standard_normal((256, 256)).astype(np.float32)


def _pattern(scene: Scene, size: int) -> np.ndarray:
    """Weight of ``tone2`` per pixel, shape `(size, size)`, in ``[0, 1]`` (noise: signed offsets)."""
    y, x = _grid(size)
    theta = math.radians(scene.pattern_angle)
    along = x * math.cos(theta) + y * math.sin(theta)
    style, period, phase = scene.background, scene.period, scene.phase
    if style == "plain":
        return np.zeros((size, size), np.float32)
    if style == "noise":
        row, col = scene.noise_offset
        return 0.35 * _noise_bank()[row : row + size, col : col + size]
    if style == "stripes":
        return ((along / period + phase) % 1.0 < 0.5).astype(np.float32)
    if style == "gradient":
        return np.clip(along / (abs(math.cos(theta)) + abs(math.sin(theta))), 0.0, 1.0)
    if style == "waves":
        return 0.5 + 0.5 * np.sin(2 * np.pi * (along / (1.5 * period) + phase))
    if style == "checkers":
        cells = np.floor(x / (0.5 * period) + phase) + np.floor(y / (0.5 * period) + phase)
        return (cells % 2).astype(np.float32)
    fx = (x / period + phase) % 1.0 - 0.5
    fy = (y / period + phase) % 1.0 - 0.5
    if style == "dots":
        return (fx * fx + fy * fy < 0.22**2).astype(np.float32)
    if style == "grid":
        return ((np.abs(fx) > 0.4) | (np.abs(fy) > 0.4)).astype(np.float32)
    raise ValueError(f"Unknown background style {style!r}.")


def _background(scene: Scene, size: int) -> np.ndarray:
    """The background, `(size, size, 3)` float32 in ``[0, 255]`` (before lighting)."""
    tone = np.asarray(scene.tone, np.float32)
    tone2 = np.asarray(scene.tone2, np.float32)
    return tone + _pattern(scene, size)[..., None] * (tone2 - tone)


def _mask(scene: Scene, size: int) -> np.ndarray:
    """Coverage of the shape per pixel, `(size, size)` float32 in ``[0, 1]`` (anti-aliased)."""
    big = size * SUPERSAMPLE
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    cx, cy, radius = scene.x * big, scene.y * big, scene.radius * big
    width = 0 if scene.fill == "solid" else max(SUPERSAMPLE, round(OUTLINE_WIDTH * big))
    fill = 255 if scene.fill == "solid" else None
    if scene.shape == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=fill, outline=255, width=width or 1)
    else:
        theta = math.radians(scene.angle)
        rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
        points = POLYGONS[scene.shape] @ rotation.T * radius + (cx, cy)
        draw.polygon([tuple(p) for p in points.tolist()], fill=fill, outline=255, width=width or 1)
    return np.asarray(canvas.reduce(SUPERSAMPLE), dtype=np.float32) * (1.0 / 255.0)


def render_scene(scene: Scene, image_size: int = 32) -> np.ndarray:
    """Render ``scene`` as a `(image_size, image_size, 3)` uint8 RGB array.

    Args:
        scene: what to draw.
        image_size: side in pixels (8 to 64; everything scales with it).
    """
    if not 8 <= image_size <= 64:
        raise ValueError(f"image_size must be between 8 and 64 pixels, got {image_size}.")
    background = _background(scene, image_size)
    colour = np.asarray(COLOURS[scene.colour], np.float32) * scene.brightness
    alpha = _mask(scene, image_size)[..., None]
    image = background + alpha * (colour - background)
    matrix, offset = LIGHTING_MAPS[scene.lighting]
    if scene.lighting != "neutral":
        image = image @ matrix.T.astype(np.float32) + offset.astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)
