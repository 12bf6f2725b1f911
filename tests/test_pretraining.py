"""Pretraining of the embedded tiny CLIP and tiny SigLIP (hf_zsl.pretraining) and the shipped embedded folder."""

import json
import math
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
from hf_zsl.tokenizer import build_siglip_tokenizer

TINY = dict(
    num_pairs=256, data_seed=3, hidden_size=32, num_layers=1, num_heads=2, projection_dim=32,
    batch_size=32, max_steps=24, learning_rate=3e-3, warmup_ratio=0.0, logging_steps=4, num_threads=1, val_pairs=64,
)
FAMILY_CONFIGS = {"clip": TINY, "siglip": dict(TINY, family="siglip", max_text_length=64)}
families = pytest.mark.parametrize("family", list(FAMILY_CONFIGS))


@pytest.fixture(scope="module")
def tiny_pairs():
    """The TINY pairs decoded and tokenized per family: ``{family: PairsDataset}``."""
    pairs = {}
    for family, values in FAMILY_CONFIGS.items():
        config = PretrainConfig(**values)
        pairs[family] = load_pairs(config, build_model(config)[1])
    return pairs


@families
def test_collator_matches_image_processor(tiny_pairs, family):
    config = PretrainConfig(**FAMILY_CONFIGS[family])
    _, tokenizer, processor = build_model(config)
    raw = shapes.pretraining_pairs(config.num_pairs, seed=config.data_seed)
    batch = ContrastiveCollator(tokenizer, processor, config.pad_to)([tiny_pairs[family][i] for i in range(8)])
    expected = processor(images=[raw[i]["image"] for i in range(8)], return_tensors="pt")["pixel_values"]
    assert torch.equal(batch["pixel_values"], expected)  # bit-identical to inference preprocessing
    # Captions padded as the stock zero-shot pipeline pads label texts (SigLIP: to 64).
    padding = dict(padding="max_length", max_length=64) if family == "siglip" else dict(padding=True)
    expected_ids = tokenizer(list(raw[:8]["caption"]), return_tensors="pt", **padding)
    assert torch.equal(batch["input_ids"], expected_ids["input_ids"])
    assert torch.equal(batch["attention_mask"], expected_ids["attention_mask"])
    assert batch["return_loss"] is True


def test_siglip_model_starts_as_the_paper():
    model, tokenizer, processor = build_model(PretrainConfig(**FAMILY_CONFIGS["siglip"]))
    assert type(model).__name__ == "SiglipModel"
    assert model.logit_scale.item() == pytest.approx(math.log(10)) and model.logit_bias.item() == -10.0
    assert model.config.text_config.max_position_embeddings == 64
    assert (model.config.text_config.pad_token_id, model.config.text_config.eos_token_id) == (
        tokenizer.pad_token_id, tokenizer.eos_token_id
    )
    assert (processor.image_mean, processor.image_std) == ((0.5,) * 3, (0.5,) * 3)
    pixels = torch.zeros(1, 32, 32, 3, dtype=torch.uint8)
    output = model(pixel_values=ContrastiveCollator(tokenizer, processor, 64).pixel_values(pixels),
                   **tokenizer(["a red star"], padding="max_length", max_length=64, return_tensors="pt"), return_loss=True)
    assert output.loss is not None  # the sigmoid loss


def test_siglip_tokenizer_is_deterministic(tmp_path):
    for name in ("a", "b"):
        build_siglip_tokenizer(shapes.shapes_vocabulary()).save_pretrained(tmp_path / name)
    files = sorted(os.listdir(tmp_path / "a"))
    assert "spiece.model" in files and files == sorted(os.listdir(tmp_path / "b"))
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)


def test_model_uses_tokenizer_special_ids():
    model, tokenizer, _ = build_model(PretrainConfig(**TINY))
    text = model.config.text_config
    assert (text.bos_token_id, text.eos_token_id, text.pad_token_id) == (
        tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    )
    assert text.vocab_size == len(tokenizer)


@families
def test_pretraining_is_deterministic_and_learns(tiny_pairs, tmp_path, family):
    config = PretrainConfig(**FAMILY_CONFIGS[family])
    first = pretrain(config, str(tmp_path / "a"), pairs=tiny_pairs[family], progress=False)
    second = pretrain(config, str(tmp_path / "b"), pairs=tiny_pairs[family], progress=False)

    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert first["loss_history"] == second["loss_history"]

    losses = [loss for _, loss in first["loss_history"]]
    assert first["steps"] == config.max_steps
    assert losses[-1] < losses[0] - 0.2, losses

    info = json.loads((tmp_path / "a" / "training_info.json").read_text())
    assert info["steps"] == config.max_steps and info["config"] == config.to_dict()
    assert info["validation"] == second["validation"] and 0 <= info["validation"]["zero_shot_colour_shape"] <= 1
    assert {p.dtype for p in a.values()} == {torch.float16}
    # The saved folder is a standard CLIP / SigLIP folder that loads in float32 and serves zero-shot.
    model = hf_zsl.build("zeroshot", str(tmp_path / "a"))
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert model.config.model_type == f"hfzsl_zeroshot{'_siglip' if family == 'siglip' else ''}"


def test_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="Unknown pretraining config keys"):
        PretrainConfig.from_dict({"hidden_sise": 64})


@pytest.mark.parametrize(
    "values, message",
    [
        ({"family": "align"}, "Unknown pretraining family"),
        ({"family": "siglip"}, "64 text positions"),
        ({"family": "siglip", "max_text_length": 64, "projection_dim": 64}, "projection_dim"),
        ({"save_dtype": "bfloat16"}, "save_dtype"),
        ({"val_seed": 7}, "val_seed"),
    ],
)
def test_config_rejects_inconsistent_values(values, message):
    with pytest.raises(ValueError, match=message):
        PretrainConfig(**values)


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
