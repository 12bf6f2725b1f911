"""What makes zero-shot CLIP that method: templates, ensembling, parity with the stock pipeline."""

import pytest
import torch
import torch.nn.functional as F
from conftest import LABELS
from transformers import CLIPModel, pipeline

import hf_zsl
from hf_zsl.templates import IMAGENET_7, resolve_templates


def test_single_template_matches_stock_pipeline(tiny_base, images):
    model = hf_zsl.build("zeroshot", tiny_base, templates="This is a photo of {}.")
    stock = pipeline("zero-shot-image-classification", model=tiny_base)
    ours = pipeline("zero-shot-image-classification", model=model, tokenizer=model.tokenizer,
                    image_processor=model.image_processor)
    for image in images:
        expected = {r["label"]: r["score"] for r in stock(image, candidate_labels=LABELS)}
        got = {r["label"]: r["score"] for r in ours(image, candidate_labels=LABELS)}
        assert got.keys() == expected.keys()
        for label in LABELS:
            assert got[label] == pytest.approx(expected[label], abs=1e-5)


def test_ensemble_is_normalised_mean_of_template_features(tiny_base, images):
    model = hf_zsl.build("zeroshot", tiny_base, templates="imagenet7")
    assert model.config.templates == IMAGENET_7
    clip = CLIPModel.from_pretrained(tiny_base).eval()
    tok = model.tokenizer
    with torch.no_grad():
        per_template = []
        for template in IMAGENET_7:
            text = tok([template.format(label) for label in LABELS], padding=True, return_tensors="pt")
            per_template.append(F.normalize(clip.get_text_features(**text).pooler_output, dim=-1))
        expected = F.normalize(torch.stack(per_template).mean(0), dim=-1)
        labels = tok(LABELS, padding=True, return_tensors="pt")
        pixels = model.image_processor(images=images, return_tensors="pt")["pixel_values"]
        out = model(**labels, pixel_values=pixels)
    torch.testing.assert_close(out.text_embeds, expected, atol=1e-6, rtol=1e-5)
    image = F.normalize(clip.get_image_features(pixel_values=pixels).pooler_output, dim=-1)
    torch.testing.assert_close(out.logits_per_image, clip.logit_scale.exp() * image @ expected.t(), atol=1e-4, rtol=1e-5)


def test_token_level_prompts_equal_tokenized_strings(tiny_base):
    model = hf_zsl.build("zeroshot", tiny_base, templates=["a photo of a {}, a type of pet.", "{} texture."])
    tok = model.tokenizer
    for label in ["red circle", "Blue  Square", "cat", "élan vital", "x-ray 3"]:
        label_ids = tok(label, add_special_tokens=False)["input_ids"]
        for template, (prefix, suffix) in zip(model.config.templates, model.config.template_token_ids):
            assert [tok.bos_token_id, *prefix, *label_ids, *suffix, tok.eos_token_id] == tok(template.format(label))["input_ids"]


def test_text_encoder_pools_at_end_of_text_token(tiny_base):
    """The CLIP pooling trap: configs with eos_token_id 2 pool at the highest id instead."""
    model = hf_zsl.build("zeroshot", tiny_base)
    assert model.config.base_config.text_config.eos_token_id == model.tokenizer.eos_token_id


def test_named_template_sets():
    assert resolve_templates("imagenet7") == IMAGENET_7
    assert resolve_templates("oxford_pets") == ["a photo of a {}, a type of pet."]
    assert resolve_templates("itap of a {}.") == ["itap of a {}."]
    with pytest.raises(ValueError, match="Unknown template set"):
        resolve_templates("no-such-set")


@pytest.mark.parametrize("bad", [[], ["no placeholder"], ["two {} {}"]])
def test_bad_templates(tiny_base, bad):
    with pytest.raises(ValueError, match="template"):
        hf_zsl.build("zeroshot", tiny_base, templates=bad)


def test_unknown_method(tiny_base):
    with pytest.raises(ValueError, match="Unknown method 'nope'"):
        hf_zsl.build("nope", tiny_base)
