"""Words of the shapes world: captions for pretraining, class names for tasks, the tokenizer's vocabulary.

Captions name a random subset of a scene's attributes inside a random template
(``"a photo of a small red star on a striped background."``, ``"an outlined blue hexagon."``,
``"red star"``, ``"a photo of a large solid circle in green."``). The templates include the prompt
templates the package's zero-shot CLIP uses, so zero-shot prompts read like pretraining captions.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

import numpy as np

from ..templates import TEMPLATE_SETS
from .world import ATTRIBUTES, BACKGROUNDS, COLOURS, LIGHTINGS, SHAPES, Scene

# Rarely captioned colour words: the class names of the "rare words" task.
RARE_COLOUR_WORDS = {
    "red": "crimson",
    "orange": "tangerine",
    "yellow": "lemon",
    "green": "emerald",
    "cyan": "turquoise",
    "blue": "azure",
    "purple": "violet",
    "pink": "rose",
}
# Canonical word first (used in class names), then caption synonyms.
SIZE_WORDS = {"small": ("small", "tiny"), "large": ("large", "big")}
FILL_WORDS = {"solid": ("solid", "filled"), "outline": ("outlined", "hollow")}
BACKGROUND_WORDS = {
    "plain": "plain",
    "noise": "noisy",
    "stripes": "striped",
    "gradient": "gradient",
    "waves": "wavy",
    "checkers": "checkered",
    "dots": "dotted",
    "grid": "grid",
}
LIGHTING_WORDS = {"neutral": None, "warm": "warm", "cool": "cool", "hue_shift": "tinted"}

CAPTION_TEMPLATES = (
    "a photo of a {}.",
    "a photo of the {}.",
    "this is a photo of a {}.",
    "this is a photo of {}.",
    "a {}.",
    "{}",
    "an image of a {}.",
    "a picture of the {}.",
    "a drawing of a {}.",
    "there is a {}.",
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a {} in a video game.",
    "art of the {}.",
)
PROMPT_TEMPLATE_SETS = ("single", "imagenet7", "pipeline")  # the prompts shapes tasks are scored with


@dataclasses.dataclass(frozen=True)
class CaptionStyle:
    """How often a caption names each attribute, and how often it uses non-canonical words.

    Attributes:
        colour, shape, size, fill, background, lighting: probability of naming that attribute
            (the lighting only when it is not neutral; a caption names the shape or the colour).
        synonym_rate: probability of a size / fill synonym ("tiny", "big", "filled", "hollow").
        rare_word_rate: probability of the rare colour word ("crimson", "azure", ...).
        colour_suffix_rate: probability of "a star in red" instead of "a red star".
    """

    colour: float = 0.9
    shape: float = 0.95
    size: float = 0.5
    fill: float = 0.5
    background: float = 0.4
    lighting: float = 0.5
    synonym_rate: float = 0.3
    rare_word_rate: float = 0.01
    colour_suffix_rate: float = 0.15


def _with_articles(text: str) -> str:
    """``"a"`` before a vowel becomes ``"an"`` (the deliberate ``"a origami"`` template excepted)."""
    return re.sub(r"\ba (?!origami)(?=[aeiou])", "an ", text)


def _background_phrase(background: str) -> str:
    return f"on a {BACKGROUND_WORDS[background]} background"


def _lighting_phrase(lighting: str) -> str | None:
    word = LIGHTING_WORDS[lighting]
    return f"in {word} light" if word else None


def describe(scene: Scene, rng: np.random.Generator, style: CaptionStyle = CaptionStyle()) -> str:
    """A caption of ``scene`` from a random template naming a random subset of its attributes."""
    draw = rng.random(12)
    say_shape = draw[0] < style.shape
    say_colour = draw[1] < style.colour or not say_shape
    colour = RARE_COLOUR_WORDS[scene.colour] if draw[2] < style.rare_word_rate else scene.colour
    words = []
    if draw[3] < style.size:
        words.append(SIZE_WORDS[scene.size][int(draw[4] < style.synonym_rate)])
    if draw[5] < style.fill:
        words.append(FILL_WORDS[scene.fill][int(draw[6] < style.synonym_rate)])
    suffix = say_colour and draw[7] < style.colour_suffix_rate
    if say_colour and not suffix:
        words.append(colour)
    words.append(scene.shape if say_shape else "shape")
    if suffix:
        words.append(f"in {colour}")
    if draw[8] < style.background:
        words.append(_background_phrase(scene.background))
    lighting = _lighting_phrase(scene.lighting)
    if lighting and draw[9] < style.lighting:
        words.append(lighting)
    template = CAPTION_TEMPLATES[int(draw[10] * len(CAPTION_TEMPLATES))]
    return _with_articles(template.format(" ".join(words)))


def class_name(attributes: Mapping[str, str], rare_words: bool = False) -> str:
    """The class name of a set of label attribute values, e.g. ``"small outlined red star"``.

    Args:
        attributes: some of :data:`~hf_zsl.shapes.world.ATTRIBUTES` mapped to values.
        rare_words: name colours by their rare words (``"crimson star"``).
    """
    unknown = set(attributes) - set(ATTRIBUTES)
    if unknown:
        raise ValueError(f"Unknown attributes {sorted(unknown)}; known: {ATTRIBUTES}.")
    words = []
    if "size" in attributes:
        words.append(SIZE_WORDS[attributes["size"]][0])
    if "fill" in attributes:
        words.append(FILL_WORDS[attributes["fill"]][0])
    if "colour" in attributes:
        colour = attributes["colour"]
        words.append(RARE_COLOUR_WORDS[colour] if rare_words else colour)
    words.append(attributes.get("shape", "shape"))
    if "background" in attributes:
        words.append(_background_phrase(attributes["background"]))
    if "lighting" in attributes and _lighting_phrase(attributes["lighting"]):
        words.append(_lighting_phrase(attributes["lighting"]))
    return " ".join(words)


def shapes_vocabulary() -> list[str]:
    """Every word a shapes caption, class name or shapes prompt template can contain (sorted)."""
    phrases = [*CAPTION_TEMPLATES, "an shape in on background light"]
    phrases += [t for name in PROMPT_TEMPLATE_SETS for t in TEMPLATE_SETS[name]]
    phrases += [*COLOURS, *RARE_COLOUR_WORDS.values(), *SHAPES]
    phrases += [w for words in (*SIZE_WORDS.values(), *FILL_WORDS.values()) for w in words]
    phrases += [BACKGROUND_WORDS[b] for b in BACKGROUNDS]
    phrases += [w for w in (LIGHTING_WORDS[lt] for lt in LIGHTINGS) if w]
    return sorted({word for phrase in phrases for word in re.findall(r"[a-z]+", phrase.lower())})
