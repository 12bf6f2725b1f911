"""Checkpoints: safetensors only, checked tensor by tensor; damage is a clear error naming file and tensor."""

import json
import os

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForZeroShotImageClassification

import hf_zsl


@pytest.fixture
def saved(tiny_base, tmp_path):
    """A self-contained zero-shot checkpoint (it holds tensors to damage)."""
    model = hf_zsl.build("zeroshot", tiny_base)
    model.save_pretrained(tmp_path, include_base_weights=True)
    return tmp_path


def test_truncated_checkpoint_names_file_and_tensor(saved):
    weights = saved / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) - 1000])
    with pytest.raises(ValueError, match=r"model\.safetensors is truncated: tensor '.+'"):
        AutoModelForZeroShotImageClassification.from_pretrained(saved)


def test_garbage_header(saved):
    (saved / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(ValueError, match="corrupt safetensors header"):
        AutoModelForZeroShotImageClassification.from_pretrained(saved)


def test_tampered_values_fail_the_digest(saved):
    weights = saved / "model.safetensors"
    tensors = load_file(weights)
    tensors["encoder.model.logit_scale"] = tensors["encoder.model.logit_scale"] + 1.0
    save_file(tensors, weights, metadata={"format": "pt"})
    with pytest.raises(ValueError, match="modified after saving"):
        AutoModelForZeroShotImageClassification.from_pretrained(saved)


def test_wrong_shape_names_tensor(saved):
    weights = saved / "model.safetensors"
    tensors = load_file(weights)
    tensors["encoder.model.visual_projection.weight"] = torch.zeros(7, 7)
    save_file(tensors, weights, metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"tensor 'encoder.model.visual_projection.weight' has shape \[7, 7\]"):
        AutoModelForZeroShotImageClassification.from_pretrained(saved)


def test_unexpected_tensor(saved):
    weights = saved / "model.safetensors"
    tensors = load_file(weights)
    tensors["head.weight"] = torch.zeros(2)
    save_file(tensors, weights, metadata={"format": "pt"})
    with pytest.raises(ValueError, match="holds tensor 'head.weight'"):
        AutoModelForZeroShotImageClassification.from_pretrained(saved)


def test_missing_base_tensor_in_self_contained_folder(saved):
    weights = saved / "model.safetensors"
    tensors = load_file(weights)
    del tensors["encoder.model.text_projection.weight"]
    save_file(tensors, weights, metadata={"format": "pt"})
    with pytest.raises(ValueError, match="lacks tensor 'encoder.model.text_projection.weight'"):
        AutoModelForZeroShotImageClassification.from_pretrained(saved)


def test_base_that_does_not_fit(saved, tmp_path_factory):
    from hf_zsl.tiny import save_tiny_clip

    other = save_tiny_clip(str(tmp_path_factory.mktemp("wider")), hidden_size=48, projection_dim=48)
    model = AutoModelForZeroShotImageClassification.from_pretrained(saved)
    model.save_pretrained(saved / "light")
    config = json.loads((saved / "light" / "config.json").read_text())
    config["base_model_name_or_path"] = other
    (saved / "light" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="do not fit this checkpoint's base_config"):
        AutoModelForZeroShotImageClassification.from_pretrained(saved / "light")


def test_no_pickle_files_anywhere(saved):
    assert not [f for f in os.listdir(saved) if f.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt"))]


def test_a_saved_method_model_is_not_a_clip_base(saved):
    with pytest.raises(ValueError, match="is a saved hf_zsl model \\(hfzsl_zeroshot\\), not a CLIP base"):
        hf_zsl.build("coop", str(saved))


def test_a_clip_base_missing_weights_is_refused(tiny_base, tmp_path):
    """Loading it would silently train and score on randomly initialised towers."""
    import shutil

    base = tmp_path / "base"
    shutil.copytree(tiny_base, base)
    tensors = load_file(base / "model.safetensors")
    del tensors["visual_projection.weight"]
    save_file(tensors, base / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match="not a complete CLIP checkpoint: 1 weights are missing"):
        hf_zsl.build("zeroshot", str(base))


def test_a_damaged_config_is_named(saved):
    (saved / "config.json").write_text('{"model_type": "hfzsl_zero')
    with pytest.raises(ValueError, match="config.json is not a readable JSON config"):
        hf_zsl.load(str(saved))


# ---------------------------------------------------------------- what a checkpoint depends on
@pytest.fixture
def saved_coop(tiny_base, tmp_path):
    model = hf_zsl.build("coop", tiny_base, n_ctx=2)
    with torch.no_grad():
        model.context.add_(1.0)
    model.save_pretrained(tmp_path / "model")
    return tmp_path / "model"


@pytest.mark.parametrize("name", ["tokenizer.json", "tokenizer_config.json", "preprocessor_config.json"])
def test_a_missing_tokenizer_or_processor_file_is_named(saved_coop, name):
    (saved_coop / name).unlink()
    with pytest.raises(ValueError, match=f"missing {name}, which it was saved with"):
        AutoModelForZeroShotImageClassification.from_pretrained(saved_coop)


def test_a_modified_tokenizer_file_is_named(saved_coop):
    path = saved_coop / "tokenizer.json"
    path.write_text(path.read_text().replace("<|hfzsl_ctx_0|>", "<|hfzsl_ctx_9|>"))
    with pytest.raises(ValueError, match="tokenizer.json was modified after saving"):
        AutoModelForZeroShotImageClassification.from_pretrained(saved_coop)


@pytest.mark.parametrize("field, value", [("context_token_ids", [3, 4]), ("template_token_ids", [[[5], [6]]]), ("n_ctx", 3)])
def test_prediction_fields_of_the_config_are_digested(saved_coop, field, value):
    path = saved_coop / "config.json"
    config = json.loads(path.read_text())
    config[field] = value
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="config.json was modified after saving"):
        AutoModelForZeroShotImageClassification.from_pretrained(saved_coop)


def test_moving_the_base_keeps_the_checkpoint_loadable(saved_coop, tiny_base, tmp_path):
    import shutil

    moved = shutil.copytree(tiny_base, tmp_path / "moved_base")
    path = saved_coop / "config.json"
    config = json.loads(path.read_text())
    config["base_model_name_or_path"] = str(moved)
    path.write_text(json.dumps(config))
    AutoModelForZeroShotImageClassification.from_pretrained(saved_coop)


def test_a_different_base_of_the_same_shape_is_refused_unless_allowed(saved_coop, tmp_path):
    from hf_zsl.tiny import save_tiny_clip

    other = save_tiny_clip(str(tmp_path / "other_base"), seed=1)  # same sizes, other weights
    path = saved_coop / "config.json"
    config = json.loads(path.read_text())
    config["base_model_name_or_path"] = other
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="not the ones this checkpoint was saved with"):
        AutoModelForZeroShotImageClassification.from_pretrained(saved_coop)
    loaded = AutoModelForZeroShotImageClassification.from_pretrained(saved_coop, allow_different_base=True)
    assert loaded.config.base_model_name_or_path == other


def test_a_bfloat16_model_saves_and_loads_with_one_dtype(tiny_base, tmp_path):
    model = hf_zsl.build("coop", tiny_base, n_ctx=2).to(torch.bfloat16)
    model.save_pretrained(tmp_path / "bf16")
    loaded = AutoModelForZeroShotImageClassification.from_pretrained(tmp_path / "bf16")
    assert {p.dtype for p in loaded.parameters()} == {torch.bfloat16}
    assert torch.equal(loaded.context, model.context)


def test_loading_in_another_dtype_is_not_tampering(saved_coop):
    loaded = AutoModelForZeroShotImageClassification.from_pretrained(saved_coop, dtype=torch.bfloat16)
    assert loaded.context.dtype == torch.bfloat16


def test_files_a_save_did_not_write_are_not_frozen(tiny_base, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "run.json").write_text("{}")
    hf_zsl.build("coop", tiny_base, n_ctx=2).save_pretrained(folder)
    (folder / "run.json").write_text('{"edited": true}')  # a run record rewritten later
    AutoModelForZeroShotImageClassification.from_pretrained(folder)


def test_a_config_saved_before_base_families_is_explained(saved_coop):
    path = saved_coop / "config.json"
    config = json.loads(path.read_text())
    config["clip_config"] = config.pop("base_config")
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="saved by hf_zsl before any CLIP-family base"):
        AutoModelForZeroShotImageClassification.from_pretrained(saved_coop)


def test_weights_that_would_be_sharded_are_refused_before_writing(tiny_base, tmp_path):
    """hf_zsl writes and checks one model.safetensors: a shard index would make the folder unloadable."""
    model = hf_zsl.build("zeroshot", tiny_base)
    with pytest.raises(ValueError, match="more than max_shard_size"):
        model.save_pretrained(tmp_path / "sharded", include_base_weights=True, max_shard_size="100KB")
    assert not (tmp_path / "sharded").exists() or not os.listdir(tmp_path / "sharded")
    model.save_pretrained(tmp_path / "whole", include_base_weights=True)
    AutoModelForZeroShotImageClassification.from_pretrained(tmp_path / "whole")
