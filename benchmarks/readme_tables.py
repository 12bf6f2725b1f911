"""What the results scripts share: number formatting and writing a table between README markers."""

from __future__ import annotations

import os
import re

import numpy as np

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def mean_std(values: list[float]) -> str:
    """Fractions as ``"mean ± std"`` in percent, one decimal."""
    return f"{100 * np.mean(values):.1f} ± {100 * np.std(values):.1f}"


def update_readme(text: str, markers: tuple[str, str]) -> None:
    """Replace what lies between the README's ``markers`` (start, end) with ``text``.

    Raises:
        SystemExit: if the README lacks the markers.
    """
    with open(README) as handle:
        readme = handle.read()
    pattern = re.compile(re.escape(markers[0]) + ".*?" + re.escape(markers[1]), re.S)
    if not pattern.search(readme):
        raise SystemExit(f"README.md lacks the markers {markers}.")
    with open(README, "w") as handle:
        handle.write(pattern.sub(lambda _: f"{markers[0]}\n{text}\n{markers[1]}", readme))
