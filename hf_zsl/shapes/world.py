"""The shapes world: its attribute values, what one image shows (:class:`Scene`), and seeded sampling.

A scene is one coloured shape on a textured background under a lighting. Every random choice a
renderer needs (position, size, rotation, background tones, pattern geometry, noise crop) is drawn
here, so :func:`hf_zsl.shapes.render.render_scene` is a pure function of the scene.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import numpy as np

# Object colours (RGB), well apart in hue so that a +40° hue rotation lands between two of them.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "orange": (240, 130, 25),
    "yellow": (235, 215, 40),
    "green": (45, 165, 55),
    "cyan": (35, 195, 205),
    "blue": (35, 70, 215),
    "purple": (140, 55, 195),
    "pink": (240, 115, 180),
}
SHAPES = ("circle", "square", "triangle", "star", "hexagon", "cross", "heart", "diamond", "pentagon", "crescent")
SIZES = ("small", "large")
FILLS = ("solid", "outline")
BACKGROUNDS = ("plain", "noise", "stripes", "gradient", "waves", "checkers", "dots", "grid")
LIGHTINGS = ("neutral", "warm", "cool", "hue_shift")

ATTRIBUTES = ("shape", "colour", "size", "fill", "background", "lighting")

# Size ranges as the shape's outer radius over the image side.
RADIUS_RANGES = {"small": (0.15, 0.20), "large": (0.30, 0.36)}


@dataclasses.dataclass(frozen=True)
class Distribution:
    """Which attribute values a set of scenes draws from (uniformly, balanced within a call).

    Attributes:
        shapes, colours, sizes, fills, backgrounds, lightings: the allowed values of each attribute.
        exclude_combos: ``(colour, shape)`` pairs that never occur.
        max_rotation: rotation jitter in degrees, uniform in ``[-max_rotation, max_rotation]``
            (kept small so a square never turns into a diamond).
    """

    shapes: tuple[str, ...] = SHAPES
    colours: tuple[str, ...] = tuple(COLOURS)
    sizes: tuple[str, ...] = SIZES
    fills: tuple[str, ...] = FILLS
    backgrounds: tuple[str, ...] = BACKGROUNDS
    lightings: tuple[str, ...] = ("neutral",)
    exclude_combos: tuple[tuple[str, str], ...] = ()
    max_rotation: float = 20.0

    def __post_init__(self):
        known = {
            "shapes": SHAPES,
            "colours": tuple(COLOURS),
            "sizes": SIZES,
            "fills": FILLS,
            "backgrounds": BACKGROUNDS,
            "lightings": LIGHTINGS,
        }
        for field, values in known.items():
            chosen = getattr(self, field)
            unknown = [v for v in chosen if v not in values]
            if not chosen or unknown:
                raise ValueError(f"Distribution.{field} must be a non-empty subset of {values}, got {chosen}.")

    def pool(self, attribute: str) -> tuple[str, ...]:
        """The allowed values of ``attribute`` (one of :data:`ATTRIBUTES`)."""
        return getattr(self, attribute + "s")

    def combos(self, colour: str | None = None, shape: str | None = None) -> list[tuple[str, str]]:
        """The allowed ``(colour, shape)`` pairs, optionally with the colour or the shape fixed."""
        excluded = set(map(tuple, self.exclude_combos))
        colours = [colour] if colour else self.colours
        shapes = [shape] if shape else self.shapes
        return [pair for pair in itertools.product(colours, shapes) if pair not in excluded]


@dataclasses.dataclass(frozen=True)
class Scene:
    """Everything one image shows. Positions and lengths are fractions of the image side.

    Attributes:
        shape, colour, size, fill, background, lighting: the attribute values.
        x, y: centre of the shape in ``[0, 1]``; radius: outer radius; angle: rotation in degrees.
        brightness: multiplies the object colour (jitter around 1).
        tone, tone2: the background's two RGB tones (low saturation), as floats in ``[0, 255]``.
        period, pattern_angle, phase: pattern geometry (stripes, waves, checkers, dots, grid, gradient).
        noise_offset: ``(row, col)`` of the crop of the fixed noise bank the ``noise`` style uses.
    """

    shape: str
    colour: str
    size: str
    fill: str
    background: str
    lighting: str
    x: float
    y: float
    radius: float
    angle: float
    brightness: float
    tone: tuple[float, float, float]
    tone2: tuple[float, float, float]
    period: float
    pattern_angle: float
    phase: float
    noise_offset: tuple[int, int]

    def attributes(self) -> dict[str, str]:
        """The attribute values, keyed by the names in :data:`ATTRIBUTES`."""
        return {name: getattr(self, name) for name in ATTRIBUTES}


def balanced_choice(rng: np.random.Generator, pool: Sequence, n: int) -> list:
    """``n`` values of ``pool`` in random order, each used ``n // len(pool)`` or one more times."""
    order = np.resize(rng.permutation(len(pool)), n)
    return [pool[i] for i in rng.permutation(order)]


def _tones(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Two background tones per scene: grey levels with a slight tint, 40–100 levels apart."""
    grey = rng.uniform(55, 200, size=(n, 1))
    tone = grey + rng.uniform(-14, 14, size=(n, 3))
    gap = rng.uniform(40, 100, size=(n, 1)) * np.where(grey > 127, -1.0, 1.0)
    tone2 = tone + gap + rng.uniform(-10, 10, size=(n, 3))
    return np.clip(tone, 0, 255), np.clip(tone2, 0, 255)


def sample_scenes(
    rng: np.random.Generator, n: int, distribution: Distribution = Distribution(), **fixed: str
) -> list[Scene]:
    """Draw ``n`` scenes from ``distribution``.

    Args:
        rng: the generator every draw comes from (same state → same scenes).
        n: number of scenes.
        distribution: the allowed attribute values.
        **fixed: attribute values every scene takes, e.g. ``colour="red", shape="star"``.

    Returns:
        ``n`` :class:`Scene` objects; categorical attributes that are not fixed are balanced
        (:func:`balanced_choice`), ``(colour, shape)`` pairs avoid ``distribution.exclude_combos``.
    """
    unknown = set(fixed) - set(ATTRIBUTES)
    if unknown:
        raise ValueError(f"Unknown attributes {sorted(unknown)}; known: {ATTRIBUTES}.")
    combos = distribution.combos(fixed.get("colour"), fixed.get("shape"))
    if not combos:
        raise ValueError(f"No allowed (colour, shape) pair with {fixed} in {distribution}.")
    colours, shapes = zip(*balanced_choice(rng, combos, n)) if n else ((), ())
    values = {"colour": colours, "shape": shapes}
    for name in ("size", "fill", "background", "lighting"):
        values[name] = [fixed[name]] * n if name in fixed else balanced_choice(rng, distribution.pool(name), n)

    low, high = np.array([RADIUS_RANGES[s] for s in values["size"]]).reshape(n, 2).T
    radius = low + rng.uniform(0, 1, n) * (high - low)
    slack = 0.5 - radius - 0.04  # keep the whole shape inside the image
    x = 0.5 + rng.uniform(-1, 1, n) * slack
    y = 0.5 + rng.uniform(-1, 1, n) * slack
    angle = rng.uniform(-distribution.max_rotation, distribution.max_rotation, n)
    brightness = rng.uniform(0.85, 1.1, n)
    tone, tone2 = _tones(rng, n)
    period = rng.uniform(0.12, 0.22, n)
    pattern_angle = rng.uniform(0, 180, n)
    phase = rng.uniform(0, 1, n)
    noise_offset = rng.integers(0, 128, size=(n, 2))
    return [
        Scene(
            shape=values["shape"][i],
            colour=values["colour"][i],
            size=values["size"][i],
            fill=values["fill"][i],
            background=values["background"][i],
            lighting=values["lighting"][i],
            x=float(x[i]),
            y=float(y[i]),
            radius=float(radius[i]),
            angle=float(angle[i]),
            brightness=float(brightness[i]),
            tone=tuple(map(float, tone[i])),
            tone2=tuple(map(float, tone2[i])),
            period=float(period[i]),
            pattern_angle=float(pattern_angle[i]),
            phase=float(phase[i]),
            noise_offset=(int(noise_offset[i, 0]), int(noise_offset[i, 1])),
        )
        for i in range(n)
    ]

