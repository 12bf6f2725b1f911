"""General vocabularies shipped with hf_zsl: RTOS's default anchors and CCLI's concept bank.

``open_semantics`` is a cross-dataset list of category names (ImageNet-1k and the other ten
datasets of the CoOp few-shot suite, as CLIP names them); ``visual_concepts`` is a general bank
of visual concepts (attributes, textures, objects, parts and scenes). ``SOURCES.md`` beside this
file gives their sources, licences and counts; ``recipes/build_vocabularies.py`` rebuilds them.
"""

from __future__ import annotations

from importlib import resources
from typing import Iterable

VOCABULARIES = ("open_semantics", "visual_concepts")


def normalise(name: str) -> str:
    """The comparison key of a name: underscores as spaces, single spaces, case-folded."""
    return " ".join(name.replace("_", " ").split()).casefold()


def load_vocabulary(name: str) -> list[str]:
    """The entries of the shipped vocabulary ``name`` (one of ``VOCABULARIES``), in file order."""
    if name not in VOCABULARIES:
        raise ValueError(f"unknown vocabulary {name!r}; choose one of {', '.join(VOCABULARIES)}")
    text = resources.files(__name__).joinpath(f"{name}.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def exclude(names: Iterable[str], targets: Iterable[str]) -> list[str]:
    """``names`` without those equal to a target class name, ignoring case, ``_`` and spacing.

    Anchors and concepts must not restate the classes being predicted; the order of ``names``
    is kept.
    """
    banned = {normalise(t) for t in targets}
    return [n for n in names if normalise(n) not in banned]
