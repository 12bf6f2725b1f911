"""Where hf_zsl keeps what it computes once (generated datasets, frozen-encoder features), and verified
tensor files: each records a digest of its contents when written, checked when read, so a damaged
entry is noticed and rebuilt instead of failing (or silently misleading) on every rerun."""

from __future__ import annotations

import hashlib
import os
import shutil
import warnings

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

DIGEST = "sha256"


def cache_root(*parts: str) -> str:
    """``$HF_ZSL_CACHE`` (default ``~/.cache/hf_zsl``), joined with ``parts``."""
    root = os.environ.get("HF_ZSL_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "hf_zsl"))
    return os.path.join(root, *parts)


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of ``tensors`` (in name order)."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def save_verified(tensors: dict[str, torch.Tensor], path: str) -> None:
    """Write ``tensors`` to ``path`` (safetensors, with their digest) atomically: readers never see half a file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    staging = f"{path}.{os.getpid()}.tmp"  # processes of a distributed run may write at once
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, staging, metadata={DIGEST: tensors_digest(tensors)})
        os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            os.remove(staging)


def load_verified(path: str) -> dict[str, torch.Tensor] | None:
    """The tensors of a file written by :func:`save_verified`, or ``None`` if there is none.

    A file that cannot be parsed, lacks its digest or no longer matches it is removed with a warning
    (so the caller rebuilds it) and ``None`` is returned.
    """
    if not os.path.exists(path):
        return None
    try:
        with safe_open(path, framework="pt") as handle:
            recorded = (handle.metadata() or {}).get(DIGEST)
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        if recorded is None:
            problem = "it has no digest"
        elif recorded != tensors_digest(tensors):
            problem = "its contents do not match the digest written with it"
        else:
            return tensors
    except (SafetensorError, OSError, ValueError) as error:
        problem = f"it cannot be read ({type(error).__name__}: {error})"
    discard(path, problem)
    return None


def discard(path: str, problem: str) -> None:
    """Remove the damaged cache entry ``path``, warning why (the caller then rebuilds it)."""
    warnings.warn(f"The cache entry {path} is damaged ({problem}); removing it and computing it again.", stacklevel=3)
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)
