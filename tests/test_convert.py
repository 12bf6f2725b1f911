"""``hf_zsl.convert.open_clip_to_transformers`` against features computed by open_clip itself.

The fixtures in ``tests/fixtures/open_clip/`` (a tiny seeded open_clip ViT CLIP, its config in the
Hub's ``open_clip_config.json`` format, inputs and open_clip's outputs) are written by
``tests/fixtures/make_open_clip_fixtures.py``, run in a separate environment with open_clip installed.
"""

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import CLIPModel

import hf_zsl
from hf_zsl.cli import main
from hf_zsl.convert import OPEN_CLIP_CONFIG, OPEN_CLIP_WEIGHTS, clip_image_processor, open_clip_to_transformers

FIXTURES = Path(__file__).parent / "fixtures" / "open_clip"
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def expected():
    return load_file(FIXTURES / "features.safetensors")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The fixture checkpoint converted once, loaded back with ``CLIPModel.from_pretrained``."""
    out = tmp_path_factory.mktemp("converted") / "clip"
    open_clip_to_transformers(str(FIXTURES), str(out))
    return out, CLIPModel.from_pretrained(out).eval()


def _copy_source(tmp_path, model_cfg=None, state_dict=None) -> Path:
    """A copy of the fixture checkpoint folder, with its ``model_cfg`` or state dict replaced."""
    source = tmp_path / "source"
    shutil.copytree(FIXTURES, source)
    if model_cfg is not None:
        config = json.loads((source / OPEN_CLIP_CONFIG).read_text())
        (source / OPEN_CLIP_CONFIG).write_text(json.dumps({**config, "model_cfg": model_cfg}))
    if state_dict is not None:
        save_file(state_dict, source / OPEN_CLIP_WEIGHTS)
    return source


def _model_cfg() -> dict:
    return json.loads((FIXTURES / OPEN_CLIP_CONFIG).read_text())["model_cfg"]


def test_fixtures_are_small_and_record_their_origin():
    assert sum(path.stat().st_size for path in FIXTURES.iterdir()) < 1_000_000
    record = json.loads((FIXTURES / "features.json").read_text())
    assert record["open_clip_version"] and "create_model" in record["created_by"]


def test_features_match_open_clip(converted, expected):
    _, model = converted
    with torch.no_grad():
        image = model.get_image_features(pixel_values=expected["pixel_values"]).pooler_output
        text = model.get_text_features(input_ids=expected["input_ids"]).pooler_output
    assert (image - expected["image_features"]).abs().max() <= TOLERANCE
    assert (text - expected["text_features"]).abs().max() <= TOLERANCE
    assert (F.normalize(image, dim=-1) - expected["image_features_normalized"]).abs().max() <= TOLERANCE
    assert (F.normalize(text, dim=-1) - expected["text_features_normalized"]).abs().max() <= TOLERANCE
    assert abs(model.logit_scale.item() - expected["logit_scale"].item()) <= TOLERANCE


def test_config_and_image_processor(converted):
    out, model = converted
    text_config, vision_config = model.config.text_config, model.config.vision_config
    assert text_config.hidden_act == vision_config.hidden_act == "quick_gelu"
    assert (vision_config.num_attention_heads, vision_config.patch_size, vision_config.image_size) == (2, 8, 32)
    assert text_config.eos_token_id == text_config.vocab_size - 1  # open_clip pools at the highest id
    processor = json.loads((out / "preprocessor_config.json").read_text())
    assert processor["size"] == {"shortest_edge": 32} and processor["crop_size"] == {"height": 32, "width": 32}
    assert processor["resample"] == 3 and processor["image_mean"][0] == pytest.approx(0.48145466)
    assert not list(out.parent.glob(".clip.*")), "the temporary folder is renamed into place"


def test_image_processor_modes():
    squash = clip_image_processor({"size": [64, 64], "resize_mode": "squash", "interpolation": "bilinear"}, 32)
    assert squash.size == {"height": 64, "width": 64} and not squash.do_center_crop and squash.resample == 2
    with pytest.raises(ValueError, match="resize_mode='longest' has no CLIPImageProcessor equivalent"):
        clip_image_processor({"resize_mode": "longest"}, 32)
    with pytest.raises(ValueError, match=r"preprocess_cfg\.size=\[64, 48\] is not square"):
        clip_image_processor({"size": [64, 48]}, 32)


def test_builds_a_zero_shot_model(converted):
    from hf_zsl.tiny import BASIC_WORDS, build_clip_tokenizer

    out, _ = converted
    tokenizer = build_clip_tokenizer(BASIC_WORDS)  # any CLIP BPE of at most 1000 ids fits the tiny model
    model = hf_zsl.build("zeroshot", str(out), tokenizer=tokenizer)
    labels = ["cat", "dog", "red circle"]
    inputs = tokenizer([f"a photo of a {label}." for label in labels], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs, pixel_values=load_file(FIXTURES / "features.safetensors")["pixel_values"]).logits_per_image
    assert logits.shape == (4, 3) and torch.isfinite(logits).all()


class QuickGELU(torch.nn.Module):
    """Named as open_clip's: the converter tells QuickGELU from GELU by the class name."""


def _open_clip_like(model_cfg: dict, state_dict: dict):
    """A stand-in for an open_clip ``CLIP`` object: the attributes the converter reads, and ``state_dict()``.

    The real objects are checked by ``tests/fixtures/check_open_clip_objects.py`` where open_clip is installed.
    """
    vision, text = model_cfg["vision_cfg"], model_cfg["text_cfg"]

    def tower(width, layers, heads):
        mlp = SimpleNamespace(c_fc=torch.nn.Linear(width, 4 * width), gelu=QuickGELU())
        block = SimpleNamespace(attn=SimpleNamespace(num_heads=heads), mlp=mlp)
        return SimpleNamespace(width=width, layers=layers, resblocks=[block] * layers)

    visual = SimpleNamespace(
        transformer=tower(vision["width"], vision["layers"], vision["width"] // vision["head_width"]),
        output_dim=model_cfg["embed_dim"], image_size=(vision["image_size"],) * 2, patch_size=(vision["patch_size"],) * 2,
        pool_type="tok", attn_pool=None, ln_pre=torch.nn.LayerNorm(vision["width"]), preprocess_cfg={"size": 32},
    )
    return SimpleNamespace(
        visual=visual, transformer=tower(text["width"], text["layers"], text["heads"]), context_length=text["context_length"],
        vocab_size=text["vocab_size"], text_pool_type="argmax", attn_mask=torch.zeros(1), logit_bias=None,
        state_dict=lambda: state_dict,
    )


def test_converts_a_model_object(tmp_path, converted):
    model = _open_clip_like(_model_cfg(), load_file(FIXTURES / OPEN_CLIP_WEIGHTS))
    out = open_clip_to_transformers(model, str(tmp_path / "object"))
    assert json.loads((Path(out) / "config.json").read_text()) == json.loads((converted[0] / "config.json").read_text())
    weights, reference = load_file(Path(out) / "model.safetensors"), load_file(converted[0] / "model.safetensors")
    assert weights.keys() == reference.keys() and all(torch.equal(weights[k], reference[k]) for k in weights)
    with pytest.raises(ValueError, match="not an open_clip ViT CLIP.*ModifiedResNet"):
        open_clip_to_transformers(SimpleNamespace(visual=None, state_dict=dict), str(tmp_path / "resnet"))
    with pytest.raises(TypeError, match="an open_clip model or a checkpoint path"):
        open_clip_to_transformers(42, str(tmp_path / "number"))


def test_cli_converts(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["convert-open-clip", str(FIXTURES / OPEN_CLIP_WEIGHTS), str(out), "--config", str(FIXTURES / OPEN_CLIP_CONFIG)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    assert main(["convert-open-clip", str(FIXTURES), str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    "section, option, value, message",
    [
        ("vision_cfg", "attentional_pool", True, "attentional pooling"),
        ("vision_cfg", "timm_model_name", "vit_base_patch16_224", "timm image tower"),
        ("vision_cfg", "layers", [3, 4, 6, 3], "ModifiedResNet"),
        ("vision_cfg", "no_ln_pre", True, "no_ln_pre"),
        ("text_cfg", "hf_model_name", "roberta-base", "Hugging Face text tower"),
        ("text_cfg", "pool_type", "last", "text pooling"),
        (None, "multimodal_cfg", {"width": 32}, "CoCa"),
        (None, "init_logit_bias", -10.0, "logit bias"),
    ],
)
def test_refuses_unsupported_architectures_before_writing(tmp_path, section, option, value, message):
    model_cfg = _model_cfg()
    (model_cfg[section] if section else model_cfg)[option] = value
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=message):
        open_clip_to_transformers(str(_copy_source(tmp_path, model_cfg=model_cfg)), str(out))
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["source"]


def test_refuses_pickles(tmp_path):
    pickle = tmp_path / "open_clip_pytorch_model.bin"
    pickle.write_bytes(b"not read")
    with pytest.raises(ValueError, match="pickled checkpoint; hf_zsl never unpickles.*safetensors"):
        open_clip_to_transformers(str(pickle), str(tmp_path / "out"), model_config=_model_cfg())
    with pytest.raises(ValueError, match="holds no open_clip_model.safetensors"):
        open_clip_to_transformers(str(tmp_path), str(tmp_path / "out"), model_config=_model_cfg())


def test_refuses_incomplete_or_foreign_state_dicts(tmp_path):
    state_dict = load_file(FIXTURES / OPEN_CLIP_WEIGHTS)
    missing = {k: v for k, v in state_dict.items() if k != "visual.transformer.resblocks.1.attn.in_proj_weight"}
    with pytest.raises(ValueError, match=r"lacks 1 tensors.*resblocks\.1\.attn\.in_proj_weight"):
        open_clip_to_transformers(str(_copy_source(tmp_path / "a", state_dict=missing)), str(tmp_path / "out"))
    extra = {**state_dict, "transformer.resblocks.0.ls_1.gamma": torch.ones(32)}
    with pytest.raises(ValueError, match=r"no place for.*ls_1\.gamma"):
        open_clip_to_transformers(str(_copy_source(tmp_path / "b", state_dict=extra)), str(tmp_path / "out"))
    wider = _model_cfg()
    wider["text_cfg"]["width"] = 64
    with pytest.raises(ValueError, match="does not match its open_clip config"):
        open_clip_to_transformers(str(_copy_source(tmp_path / "c", model_cfg=wider)), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_refuses_a_tokenizer_that_pools_elsewhere(tmp_path):
    from hf_zsl.tiny import BASIC_WORDS, build_clip_tokenizer

    with pytest.raises(ValueError, match="end-of-text id is 1.*pools text at id 999"):
        open_clip_to_transformers(str(FIXTURES), str(tmp_path / "out"), tokenizer=build_clip_tokenizer(BASIC_WORDS))


def test_refuses_a_missing_config(tmp_path):
    weights = tmp_path / "model.safetensors"
    shutil.copy(FIXTURES / OPEN_CLIP_WEIGHTS, weights)
    with pytest.raises(ValueError, match="No open_clip_config.json beside.*model_config="):
        open_clip_to_transformers(str(weights), str(tmp_path / "out"))
