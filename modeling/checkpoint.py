"""Checkpoint integrity: read a safetensors header defensively and compare it with the model.

Failures name the file and the tensor, so a truncated download or a tampered file is diagnosed
before any weight is used.
"""

import hashlib
import json
import os
import struct

import torch

_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def read_safetensors_header(path: str) -> dict[str, tuple[str, tuple[int, ...]]]:
    """``{tensor name: (dtype, shape)}`` of a safetensors file, validated against the file size.

    Raises:
        ValueError: if the header is unreadable or a tensor's bytes are missing or inconsistent.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        raw_length = handle.read(8)
        if len(raw_length) < 8:
            raise ValueError(f"Checkpoint {path} is truncated: {size} bytes, not even a safetensors header.")
        (header_length,) = struct.unpack("<Q", raw_length)
        if header_length > size - 8:
            raise ValueError(
                f"Checkpoint {path} is truncated or not a safetensors file: its header claims "
                f"{header_length} bytes but the file has {size}. Download or save it again."
            )
        try:
            header = json.loads(handle.read(header_length))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"Checkpoint {path} has a corrupt safetensors header ({error}).") from None
    header.pop("__metadata__", None)
    data_size = size - 8 - header_length
    tensors = {}
    for name, entry in header.items():
        dtype, shape, (start, end) = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
        if end > data_size:
            raise ValueError(
                f"Checkpoint {path} is truncated: tensor {name!r} needs bytes {start}-{end} but only "
                f"{data_size} data bytes are present. Download or save it again."
            )
        expected = _DTYPE_BYTES.get(dtype, 0) * int(torch.Size(shape).numel())
        if dtype in _DTYPE_BYTES and end - start != expected:
            raise ValueError(
                f"Checkpoint {path} is corrupt: tensor {name!r} ({dtype}, shape {list(shape)}) should "
                f"take {expected} bytes but takes {end - start}."
            )
        tensors[name] = (dtype, shape)
    return tensors


def check_against_model(
    path: str, tensors: dict[str, tuple[str, tuple[int, ...]]], expected: dict[str, torch.Size], required: set[str]
) -> None:
    """Compare a checkpoint's tensors with the shapes the model expects.

    Args:
        tensors: the checkpoint header (:func:`read_safetensors_header`).
        expected: every loadable tensor name of the model and its shape.
        required: names that must be present (what the method learned).
    """
    for name, (_, shape) in tensors.items():
        if name not in expected:
            raise ValueError(
                f"Checkpoint {path} holds tensor {name!r}, which this model does not have: the file was "
                "made for another method or configuration (check config.json's model_type and sizes)."
            )
        if tuple(expected[name]) != shape:
            raise ValueError(
                f"Checkpoint {path}: tensor {name!r} has shape {list(shape)} but the model expects "
                f"{list(expected[name])}; config.json and the weights disagree."
            )
    missing = sorted(required - tensors.keys())
    if missing:
        raise ValueError(
            f"Checkpoint {path} lacks tensor {missing[0]!r} ({len(missing)} missing tensors in all); "
            "the file is incomplete or belongs to another configuration."
        )


def state_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of ``state_dict`` (sorted by name)."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{list(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
