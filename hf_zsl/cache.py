"""Where hf_zsl keeps what it computes once: generated datasets and frozen-encoder features."""

import os


def cache_root(*parts: str) -> str:
    """``$HF_ZSL_CACHE`` (default ``~/.cache/hf_zsl``), joined with ``parts``."""
    root = os.environ.get("HF_ZSL_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "hf_zsl"))
    return os.path.join(root, *parts)
