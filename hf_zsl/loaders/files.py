"""File checks shared by the benchmark loaders."""

from __future__ import annotations

import ntpath
import os
from collections.abc import Sequence

SHOWN = 5


def check_inside(path: str, what: str) -> None:
    """Raise unless the relative ``path`` stays inside the folder it will be joined to (or any of its
    trailing parts is joined to).

    Checked on the text, before any file is touched: refused are absolute paths (POSIX or Windows, with
    a drive or a UNC share), ``~``, any ``..`` part, and NUL bytes. Symbolic
    links inside the dataset are followed as usual (datasets often link their image folder elsewhere).

    Args:
        path: a path read from a dataset file.
        what: where it was read (``"entry 3 of split 'train' in split_zhou_X.json"``), for the message.

    Raises:
        ValueError: naming ``what`` and ``path``.
    """
    parts = path.replace("\\", "/").split("/")
    absolute = path.startswith(("/", "\\")) or bool(ntpath.splitdrive(path)[0])
    if "\0" in path or absolute or ".." in parts or parts[0] == "~":
        raise ValueError(
            f"The path {path!r} ({what}) reaches outside the dataset's folder; dataset files may only name "
            "paths relative to their image folder (no leading '/', drive, '~' or '..')."
        )


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
