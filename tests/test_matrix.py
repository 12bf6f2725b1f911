"""The shared test matrix: every registered method, built tiny over every supported base family, passes these."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import LABELS
from method_cases import CASES
from transformers import AutoConfig, AutoModelForZeroShotImageClassification, pipeline

import hf_zsl
from hf_zsl.tiny_families import FAMILIES

METHOD_NAMES = sorted(hf_zsl.METHODS)
# CFZSL's CNN branch reads square images; SigLIP 2's patch sequences cannot feed it (refused at build,
# tests/test_families.py).
UNSUPPORTED = {("siglip2", "cfzsl")}
CASE_IDS = [(family, method) for family in FAMILIES for method in METHOD_NAMES if (family, method) not in UNSUPPORTED]
# CLIP and SigLIP (softmax / sigmoid, BPE / SentencePiece) run in the quick suite; the other families
# are marked slow and run in CI (.ci/run).
QUICK_FAMILIES = ("clip", "siglip")
CASE_PARAMS = [
    pytest.param(case, id=f"{case[0]}-{case[1]}", marks=() if case[0] in QUICK_FAMILIES else pytest.mark.slow)
    for case in CASE_IDS
]


def test_every_method_has_a_case():
    assert set(CASES) == set(hf_zsl.METHODS)


@pytest.fixture(params=CASE_PARAMS)
def model(request, family_base):
    family, method = request.param
    case = CASES[method]
    built = hf_zsl.build(method, family_base(family), **case.hyperparameters)
    if case.fit is not None:
        case.fit(built)
    return built


def image_inputs(model, images) -> dict:
    """Every image-processor output (SigLIP 2 adds ``pixel_attention_mask`` and ``spatial_shapes``)."""
    return dict(model.image_processor(images=images, return_tensors="pt"))


def inputs(model, images, labels=LABELS):
    text = model.tokenizer(labels, padding=True, return_tensors="pt")
    return dict(input_ids=text["input_ids"], attention_mask=text["attention_mask"], **image_inputs(model, images))


def scores(model, logits):
    """What the stock pipeline reads from logits: sigmoids for a SigLIP model type, else a softmax."""
    return logits.sigmoid() if "siglip" in model.config.model_type else logits.softmax(-1)


def test_forward_shapes(model, images):
    out = model(**inputs(model, images), labels=torch.tensor([0, 1, 2]))
    dim = model.encoder.embed_dim
    assert out.logits_per_image.shape == (3, len(LABELS))
    assert torch.equal(out.logits_per_text, out.logits_per_image.t())
    assert out.image_embeds.shape == (3, dim) and out.text_embeds.shape == (len(LABELS), dim)
    torch.testing.assert_close(out.text_embeds.norm(dim=-1), torch.ones(len(LABELS)))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    expected = torch.nn.functional.cross_entropy(out.logits_per_image, torch.tensor([0, 1, 2]))
    torch.testing.assert_close(out.loss, expected)


def test_image_embeds_path_matches_pixels(model, images):
    """Cached CLIP features score like the images they came from. A method with a trainable image
    branch (``needs_pixel_values``) still gets the pixels, and refuses to score without them."""
    batch = inputs(model, images)
    with torch.no_grad():
        from_pixels = model(**batch).logits_per_image
        embeds = model.encode_images(**image_inputs(model, images))
        if model.needs_pixel_values:
            without_pixels = {k: v for k, v in batch.items() if k != "pixel_values"}
            with pytest.raises(ValueError, match="pixel_values"):
                model(**without_pixels, image_embeds=embeds)
        else:
            for name in image_inputs(model, images):
                batch.pop(name)
        from_embeds = model(**batch, image_embeds=embeds).logits_per_image
    torch.testing.assert_close(from_pixels, from_embeds)


def test_only_learned_parameters_get_gradients(model, images):
    model.train()
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {name for name in dict(model.named_parameters()) if not name.startswith("encoder.")}
    out = model(**inputs(model, images), labels=torch.tensor([0, 1, 2]))
    if not trainable:
        assert not out.loss.requires_grad
        return
    out.loss.backward()
    for name, p in model.named_parameters():
        if name in trainable:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name


def test_save_load_reproduces_logits(model, images, tmp_path):
    batch = inputs(model, images)
    with torch.no_grad():
        before = model(**batch).logits_per_image
    model.save_pretrained(tmp_path)
    files = set(os.listdir(tmp_path))
    assert {"config.json", "model.safetensors", "tokenizer_config.json", "preprocessor_config.json"} <= files
    assert not any(f.endswith((".bin", ".pt", ".pth", ".pkl")) for f in files)
    with open(tmp_path / "config.json") as handle:
        config = json.load(handle)
    assert config["base_weights_included"] is False and config["auto_map"]
    loaded = AutoModelForZeroShotImageClassification.from_pretrained(tmp_path)
    assert type(loaded) is type(model)
    with torch.no_grad():
        after = loaded(**inputs(loaded, images)).logits_per_image
    assert torch.equal(before, after)


def test_default_checkpoint_holds_only_learned_tensors(model, tmp_path):
    from safetensors import safe_open

    model.save_pretrained(tmp_path)
    with safe_open(tmp_path / "model.safetensors", "pt") as handle:
        assert set(handle.keys()) == set(model.learned_state_dict())
        assert not any(key.startswith("encoder.") for key in handle.keys())


def test_self_contained_checkpoint_needs_no_base(model, images, tmp_path):
    batch = inputs(model, images)
    with torch.no_grad():
        before = model(**batch).logits_per_image
    model.save_pretrained(tmp_path, include_base_weights=True)
    config_path = tmp_path / "config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = str(tmp_path / "no-such-base")
    config_path.write_text(json.dumps(config))
    loaded = AutoModelForZeroShotImageClassification.from_pretrained(tmp_path)
    with torch.no_grad():
        assert torch.equal(before, loaded(**batch).logits_per_image)


def test_auto_config(model, tmp_path):
    model.save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path)
    assert type(config) is type(model.config)
    assert config.base_model_name_or_path == model.config.base_model_name_or_path


REMOTE_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["hf_zsl"] = None  # hf_zsl cannot be imported in this Python
    import torch
    from transformers import AutoModelForZeroShotImageClassification
    folder, batch_path, out_path = sys.argv[1:]
    model = AutoModelForZeroShotImageClassification.from_pretrained(folder, trust_remote_code=True)
    assert not type(model).__module__.startswith("hf_zsl"), type(model).__module__
    from safetensors.torch import load_file, save_file
    batch = load_file(batch_path)
    with torch.no_grad():
        logits = model(**batch).logits_per_image
    save_file({"logits": logits.contiguous()}, out_path)
    """
)


REMOTE_CODE_ON_EVERY_FAMILY = ("zeroshot", "coop")


def test_remote_code_loading_without_hf_zsl(model, images, tmp_path):
    from safetensors.torch import load_file, save_file

    if model.encoder.family != "clip" and model.config.method not in REMOTE_CODE_ON_EVERY_FAMILY:
        pytest.skip(f"one subprocess per case: every method runs on CLIP, {REMOTE_CODE_ON_EVERY_FAMILY} on every family")

    folder = tmp_path / "model"
    model.save_pretrained(folder)
    batch = inputs(model, images)
    with torch.no_grad():
        expected = model(**batch).logits_per_image
    save_file({k: v.contiguous() for k, v in batch.items()}, tmp_path / "batch.safetensors")
    script = tmp_path / "remote.py"
    script.write_text(REMOTE_SCRIPT)
    env = dict(os.environ, PYTHONPATH="")
    result = subprocess.run(
        [sys.executable, str(script), str(folder), str(tmp_path / "batch.safetensors"), str(tmp_path / "out.safetensors")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert torch.equal(load_file(tmp_path / "out.safetensors")["logits"], expected)


def test_pipeline_from_folder_and_object(model, images, tmp_path):
    with torch.no_grad():
        logits = model(**inputs(model, images[:1])).logits_per_image[0]
    expected = dict(zip(LABELS, scores(model, logits).tolist()))
    model.save_pretrained(tmp_path)
    for classifier in (
        pipeline("zero-shot-image-classification", model=str(tmp_path), device=model.device),
        pipeline("zero-shot-image-classification", model=model, tokenizer=model.tokenizer,
                 image_processor=model.image_processor, device=model.device),
    ):  # on the model's device: a pipeline given none takes the GPU where there is one
        result = classifier(images[0], candidate_labels=LABELS)
        assert [r["label"] for r in result] == sorted(expected, key=expected.get, reverse=True)
        for r in result:
            assert r["score"] == pytest.approx(expected[r["label"]], abs=1e-6)


def test_pipeline_strips_hypothesis_template(model, images):
    classifier = pipeline("zero-shot-image-classification", model=model, tokenizer=model.tokenizer,
                          image_processor=model.image_processor)
    default = classifier(images[0], candidate_labels=LABELS)
    bare = classifier(images[0], candidate_labels=LABELS, hypothesis_template="{}")
    assert default == bare


def test_pipeline_encodes_each_label_set_once(model, images):
    classifier = pipeline("zero-shot-image-classification", model=model, tokenizer=model.tokenizer,
                          image_processor=model.image_processor)
    model.text_cache.clear()
    misses = model.text_cache.misses
    for image in images:
        classifier(image, candidate_labels=LABELS)
    classifier(images, candidate_labels=LABELS, batch_size=2)
    assert model.text_cache.misses == misses + 1
    classifier(images[0], candidate_labels=LABELS[:2])
    assert model.text_cache.misses == misses + 2


def test_grayscale_and_rgba_images_score_like_rgb(model, images):
    classifier = pipeline("zero-shot-image-classification", model=model, tokenizer=model.tokenizer,
                          image_processor=model.image_processor)
    rgb = images[0]
    for converted in (rgb.convert("L"), rgb.convert("RGBA")):
        as_rgb = converted.convert("RGB")
        assert classifier(converted, candidate_labels=LABELS) == classifier(as_rgb, candidate_labels=LABELS)


# ---------------------------------------------------------------- bad inputs
def test_empty_label_list(model, images):
    with pytest.raises(ValueError, match="empty"):
        model(input_ids=torch.zeros((0, 5), dtype=torch.long), pixel_values=inputs(model, images)["pixel_values"])
    classifier = pipeline("zero-shot-image-classification", model=model, tokenizer=model.tokenizer,
                          image_processor=model.image_processor)
    with pytest.raises(ValueError, match="empty"):
        classifier(images[0], candidate_labels=[])


def test_duplicate_labels(model, images):
    with pytest.raises(ValueError, match="positions 0 and 2"):
        model(**inputs(model, images, ["cat", "dog", "cat"]))


def test_empty_label_string(model, images):
    with pytest.raises(ValueError, match="position 1 is empty"):
        model(**inputs(model, images, ["cat", ""]))


def test_label_longer_than_text_context(model, images):
    long_label = " ".join(["red circle"] * 60)
    with pytest.raises(ValueError, match="position 1 is too long"):
        model(**inputs(model, images, ["cat", long_label]))


def test_non_image_input(model):
    classifier = pipeline("zero-shot-image-classification", model=model, tokenizer=model.tokenizer,
                          image_processor=model.image_processor)
    with pytest.raises((ValueError, TypeError)):
        classifier(12345, candidate_labels=LABELS)
    text = model.tokenizer(LABELS, padding=True, return_tensors="pt")
    with pytest.raises(TypeError, match="pixel_values must be a torch.Tensor"):
        model(**text, pixel_values=np.zeros((1, 3, 32, 32), dtype=np.float32))


def test_wrong_pixel_shape(model, images):
    text = model.tokenizer(LABELS, padding=True, return_tensors="pt")
    if model.encoder.variable_resolution:
        with pytest.raises(ValueError, match="pixel_attention_mask and spatial_shapes"):
            model(**text, pixel_values=image_inputs(model, images)["pixel_values"])
        with pytest.raises(ValueError, match=r"expected \(batch, patches, 192\)"):
            model(**text, pixel_values=torch.zeros(2, 3, 16, 16))
        return
    with pytest.raises(ValueError, match=r"expected \(batch, 3, 32, 32\)"):
        model(**text, pixel_values=torch.zeros(2, 3, 16, 16))
    with pytest.raises(ValueError, match="shape"):
        model(**text, pixel_values=torch.zeros(3, 32, 32))


def test_labels_out_of_range(model, images):
    with pytest.raises(ValueError, match="must index"):
        model(**inputs(model, images), labels=torch.tensor([0, 1, 7]))
