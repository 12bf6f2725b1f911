"""hf_zsl's logger, with transformers' conventions (``transformers.utils.logging``).

Every module logs through a child of the ``hf_zsl`` logger (:func:`get_logger`); one handler on
stderr prints the messages. The default verbosity is ``WARNING`` (``HF_ZSL_VERBOSITY`` sets another:
``debug``, ``info``, ``warning``, ``error``); the command line sets ``INFO`` (``--quiet``: ``WARNING``,
``--verbose``: ``DEBUG``). Progress bars (tqdm, on stderr) are on unless :func:`disable_progress_bars` (the
command line's ``--quiet``) turned them off.

    >>> from hf_zsl import logging
    >>> logging.set_verbosity_info()
    >>> logger = logging.get_logger(__name__)
"""

from __future__ import annotations

import logging
import os
import sys
import threading

from logging import DEBUG, ERROR, INFO, WARNING  # noqa: F401  (re-exported, as transformers does)

LIBRARY = "hf_zsl"
_LEVELS = {"debug": DEBUG, "info": INFO, "warning": WARNING, "error": ERROR}
_lock = threading.Lock()
_handler: logging.Handler | None = None
_progress_bars = True


class _StderrHandler(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is when a message is emitted (redirections, pytest's capture)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def _default_level() -> int:
    name = os.environ.get("HF_ZSL_VERBOSITY", "warning").lower()
    if name not in _LEVELS:
        raise ValueError(f"HF_ZSL_VERBOSITY={name!r} is not a level; use one of {', '.join(_LEVELS)}.")
    return _LEVELS[name]


def _library_logger() -> logging.Logger:
    """The ``hf_zsl`` logger, given its stderr handler and default level on first use."""
    global _handler
    logger = logging.getLogger(LIBRARY)
    with _lock:
        if _handler is None:
            _handler = _StderrHandler()
            _handler.setFormatter(logging.Formatter("%(message)s"))
            logger.addHandler(_handler)
            logger.setLevel(_default_level())
            logger.propagate = False
    return logger


def get_logger(name: str | None = None) -> logging.Logger:
    """The logger ``name`` (a module's ``__name__``) under the ``hf_zsl`` logger; the library's own without ``name``."""
    root = _library_logger()
    if name is None or name == LIBRARY:
        return root
    return logging.getLogger(name if name.startswith(f"{LIBRARY}.") else f"{LIBRARY}.{name}")


def get_verbosity() -> int:
    """The ``hf_zsl`` logger's level (``logging.INFO``, ...)."""
    return _library_logger().getEffectiveLevel()


def set_verbosity(level: int) -> None:
    """Set the ``hf_zsl`` logger's level (``hf_zsl.logging.INFO``, ...)."""
    _library_logger().setLevel(level)


def set_verbosity_debug() -> None:
    set_verbosity(DEBUG)


def set_verbosity_info() -> None:
    set_verbosity(INFO)


def set_verbosity_warning() -> None:
    set_verbosity(WARNING)


def set_verbosity_error() -> None:
    set_verbosity(ERROR)


def enable_progress_bars() -> None:
    """Show hf_zsl's progress bars (the default)."""
    global _progress_bars
    _progress_bars = True


def disable_progress_bars() -> None:
    """Hide every hf_zsl progress bar."""
    global _progress_bars
    _progress_bars = False


def progress_bars_enabled() -> bool:
    """Whether hf_zsl draws progress bars."""
    return _progress_bars
