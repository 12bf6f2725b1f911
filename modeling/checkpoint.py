"""Checkpoint integrity: read a safetensors header defensively and compare it with the model, and
check what a checkpoint depends on (its tokenizer and image-processor files, the config fields that
change predictions, the base weights).

Failures name the file and the tensor, so a truncated download or a tampered file is diagnosed
before any weight is used.
"""

import dataclasses
import hashlib
import json
import os
import struct

import torch
from transformers import PreTrainedConfig
from transformers.utils import cached_file

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


# ---------------------------------------------------------------- what a checkpoint depends on
MANIFEST_NAME = "hf_zsl_files.json"
"""``{file name: sha256}`` of every file a checkpoint needs beside its weights and config (tokenizer,
image processor), written at save time and checked at load."""
_NOT_IN_MANIFEST = {"config.json", "model.safetensors", "README.md", MANIFEST_NAME}
_CONFIG_FIELDS_NOT_DIGESTED = {
    # where the base is and how the file was written: moving a folder or re-saving must not break it
    "base_model_name_or_path", "base_model_revision", "base_weights_included",
    # the digests themselves
    "saved_state_sha256", "config_sha256", "base_weights_sha256", "base_weights_dtype",
}


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: str, written: list[str]) -> dict[str, str]:
    """Record the digest of the files ``written`` into ``folder`` that loading needs (the tokenizer's and
    the image processor's; other files in the folder — a Trainer's logs, run records — are not frozen)."""
    names = {os.path.basename(str(path)) for path in written} - _NOT_IN_MANIFEST
    entries = {name: file_sha256(os.path.join(folder, name)) for name in sorted(names) if os.path.isfile(os.path.join(folder, name))}
    with open(os.path.join(folder, MANIFEST_NAME), "w") as handle:
        json.dump(entries, handle, indent=2, sort_keys=True)
    return entries


def check_manifest(name_or_path: str, **hub_kwargs) -> None:
    """Raise a ``ValueError`` naming the file if one the checkpoint was saved with is missing or changed.

    Folders saved before manifests existed (no ``hf_zsl_files.json``) are not checked.
    """
    manifest = cached_file(name_or_path, MANIFEST_NAME, _raise_exceptions_for_missing_entries=False, **hub_kwargs)
    if manifest is None:
        return
    with open(manifest) as handle:
        entries = json.load(handle)
    for name, expected in entries.items():
        path = cached_file(name_or_path, name, _raise_exceptions_for_missing_entries=False, **hub_kwargs)
        if path is None:
            raise ValueError(
                f"Checkpoint {name_or_path} is missing {name}, which it was saved with (listed in {MANIFEST_NAME}); "
                "without it the labels would be tokenized or the images prepared differently. Copy, save or "
                "download the whole folder again."
            )
        if file_sha256(path) != expected:
            raise ValueError(
                f"Checkpoint {name_or_path}: {name} was modified after saving (its sha256 differs from "
                f"{MANIFEST_NAME}). Save or download the folder again."
            )


def config_digest(config) -> str:
    """SHA-256 of every config field that changes predictions: the fields hf_zsl's config classes declare
    (class names and their ids, templates, the text layout, the base's config, the method's
    hyper-parameters), not transformers' generic run-time flags (``use_cache``, ``return_dict``, ...)."""
    generic = {field.name for field in dataclasses.fields(PreTrainedConfig)}
    declared = {field.name for field in dataclasses.fields(config)} - generic - _CONFIG_FIELDS_NOT_DIGESTED
    fields = {k: v for k, v in config.to_dict().items() if k in declared and k != "base_config"}
    fields["base_config"] = _base_config_fields(config.base_config)
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def _base_config_fields(config) -> dict:
    """The base config's fields that shape or pool its towers (its weights are checked apart, by
    ``base_weights_sha256``); defaults a transformers version writes or omits do not count."""
    picked = {"model_type": config.model_type, "projection_dim": getattr(config, "projection_dim", None)}
    for tower in ("text_config", "vision_config"):
        sub = getattr(config, tower, None)
        picked[tower] = {
            name: getattr(sub, name, None)
            for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size", "max_position_embeddings",
                         "bos_token_id", "eos_token_id", "pad_token_id", "image_size", "patch_size", "hidden_act")
        }
    return picked
