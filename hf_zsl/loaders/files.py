"""File checks shared by the benchmark loaders."""

from __future__ import annotations

import os
from collections.abc import Sequence

SHOWN = 5


def require_files(paths: Sequence[str], fix: str) -> None:
    """Raise if any of ``paths`` is not an existing file (checked now, with :func:`os.path.isfile`: a folder,
    e.g. an empty relative path joined to the image root, does not pass).

    Args:
        paths: the image files a loader is about to reference.
        fix: a sentence telling the user how to repair the layout, appended to the message.

    Raises:
        ValueError: naming how many files are missing and the first few of them.
    """
    missing = [path for path in paths if not os.path.isfile(path)]
    if missing:
        shown = ", ".join(missing[:SHOWN]) + (", ..." if len(missing) > SHOWN else "")
        raise ValueError(f"{len(missing)} of {len(paths)} image files are missing: {shown} (a folder does not count as a file). {fix}")
