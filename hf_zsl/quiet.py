"""Silence :mod:`datasets` progress bars around bookkeeping steps (saving, flattening indices)."""

from __future__ import annotations

import contextlib

from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars


@contextlib.contextmanager
def quiet_datasets():
    """Disable ``datasets`` progress bars inside the block, restoring the previous setting after."""
    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            enable_progress_bars()
