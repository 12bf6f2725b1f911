"""Pretraining of the embedded tiny CLIP (hf_zsl.pretraining) and the shipped embedded folder."""

import json
import os

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import hf_zsl
from hf_zsl import metrics, shapes
from hf_zsl.features import image_features
from hf_zsl.modeling.modeling_base import EMBEDDED_BASE, resolve_base_path
from hf_zsl.pretraining import ContrastiveCollator, PairsDataset, PretrainConfig, build_model, load_pairs, pretrain

TINY = dict(
    num_pairs=256, data_seed=3, hidden_size=32, num_layers=1, num_heads=2, projection_dim=32,
    batch_size=32, max_steps=24, learning_rate=3e-3, warmup_ratio=0.0, logging_steps=4, num_threads=1,
)


@pytest.fixture(scope="module")
def tiny_pairs():
    config = PretrainConfig(**TINY)
    _, tokenizer, _ = build_model(config)
    return load_pairs(config, tokenizer)


def test_collator_matches_image_processor(tiny_pairs):
    config = PretrainConfig(**TINY)
    _, tokenizer, processor = build_model(config)
    raw = shapes.pretraining_pairs(config.num_pairs, seed=config.data_seed)
    batch = ContrastiveCollator(tokenizer, processor)([tiny_pairs[i] for i in range(8)])
    expected = processor(images=[raw[i]["image"] for i in range(8)], return_tensors="pt")["pixel_values"]
    assert torch.equal(batch["pixel_values"], expected)  # bit-identical to inference preprocessing
    expected_ids = tokenizer(list(raw[:8]["caption"]), padding=True, return_tensors="pt")
    assert torch.equal(batch["input_ids"], expected_ids["input_ids"])
    assert torch.equal(batch["attention_mask"], expected_ids["attention_mask"])
    assert batch["return_loss"] is True


def test_model_uses_tokenizer_special_ids():
    model, tokenizer, _ = build_model(PretrainConfig(**TINY))
    text = model.config.text_config
    assert (text.bos_token_id, text.eos_token_id, text.pad_token_id) == (
        tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    )
    assert text.vocab_size == len(tokenizer)


def test_pretraining_is_deterministic_and_learns(tiny_pairs, tmp_path):
    config = PretrainConfig(**TINY)
    first = pretrain(config, str(tmp_path / "a"), pairs=tiny_pairs, progress=False)
    second = pretrain(config, str(tmp_path / "b"), pairs=tiny_pairs, progress=False)

    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert first["loss_history"] == second["loss_history"]

    losses = [loss for _, loss in first["loss_history"]]
    assert first["steps"] == config.max_steps
    assert losses[-1] < losses[0] - 0.2, losses

    info = json.loads((tmp_path / "a" / "training_info.json").read_text())
    assert info["steps"] == config.max_steps and info["config"] == config.to_dict()
    assert {p.dtype for p in a.values()} == {torch.float16}
    # The saved folder is a standard CLIP folder that loads in float32 and serves zero-shot.
    model = hf_zsl.build("zeroshot", str(tmp_path / "a"))
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="Unknown pretraining config keys"):
        PretrainConfig.from_dict({"hidden_sise": 64})


def test_pairs_dataset_checks_sizes():
    with pytest.raises(ValueError, match="captions"):
        PairsDataset(torch.zeros(2, 4, 4, 3, dtype=torch.uint8), [[0, 1]])


EMBEDDED = resolve_base_path(EMBEDDED_BASE)


@pytest.mark.skipif(not os.path.isdir(EMBEDDED), reason="the embedded tiny CLIP has not been pretrained yet")
def test_embedded_model_is_small_and_strong_on_colour_shape():
    files = os.listdir(EMBEDDED)
    assert "model.safetensors" in files and not any(f.endswith((".bin", ".pt", ".pth", ".pkl")) for f in files)
    assert sum(os.path.getsize(os.path.join(EMBEDDED, f)) for f in files) <= 20 * 2**20
    info = json.loads(open(os.path.join(EMBEDDED, "training_info.json")).read())
    assert info["wall_seconds"] <= 45 * 60 and info["steps"] > 0

    model = hf_zsl.build("zeroshot", EMBEDDED_BASE)  # offline: HF_HUB_OFFLINE=1 in conftest
    test = shapes.task_data("colour_shape")["test"]
    features = image_features(model, test, progress=False)
    names = test.features["label"].names
    with torch.inference_mode():
        logits = model(**model.tokenizer(names, padding=True, return_tensors="pt"), image_embeds=features).logits_per_image
    accuracy = metrics.accuracy(logits.argmax(1).numpy(), np.asarray(test["label"]))
    assert accuracy > 0.6, f"zero-shot accuracy {accuracy:.1%} on colour_shape (chance {1 / len(names):.1%})"
