"""Tip-Adapter / -F parity with the official code (fixtures ``tip_adapter``, ``tip_adapter_f``; docs §2):
the cache, the fused logits, ``search_hp``'s grid and tie rule, and one AdamW step of -F under the
``paper`` preset, through hf_zsl's TipAdapter models over a base whose zero-shot text weights are the
fixture's (logit scale 100, as the official ``100. * f @ clip_weights``)."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from test_coop_parity import CLASS_NAMES, fixture_clip, openai_tokenizer
from test_official_fixtures import _load

import hf_zsl
from hf_zsl.methods import tip_adapter
from hf_zsl.tiny import clip_image_processor
from hf_zsl.training import LabelledFeatures, train_on_features

TOLERANCE = 1e-5


def tip_model(method: str, clip_weights: torch.Tensor):
    """A ``method`` model over the 4 fixture classes whose zero-shot label features are ``clip_weights``' columns."""
    base, _ = fixture_clip()
    base.logit_scale.data.fill_(math.log(100.0))
    model = hf_zsl.build(method, base, tokenizer=openai_tokenizer(), image_processor=clip_image_processor(32),
                         class_names=CLASS_NAMES)
    model.label_features = lambda labels: clip_weights.t()
    return model


def official_settings(meta) -> tip_adapter.TipSettings:
    """The ``paper`` preset with the fixture's config (its grid, init point and one batch of 8)."""
    cfg = meta["config"]
    return dataclasses.replace(
        tip_adapter.PAPER_SETTINGS, beta_scale=cfg["search_scale"][0], alpha_scale=cfg["search_scale"][1],
        beta_steps=cfg["search_step"][0], alpha_steps=cfg["search_step"][1], init_beta=cfg["init_beta"],
        init_alpha=cfg["init_alpha"], epochs=cfg["train_epoch"], batch_size=8, train_views=0, precision="fp32",
    )


def logits(model, features: torch.Tensor) -> torch.Tensor:
    text = model.tokenizer(CLASS_NAMES, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**text, image_embeds=features).logits_per_image


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Max absolute difference, relative to the reference's magnitude where it exceeds 1 (logits reach ~40
    at CLIP's scale 100, where float32's spacing is 4e-6)."""
    return float((a - b).abs().max() / max(1.0, float(b.abs().max())))


def test_cache_logits_and_search_match_tip():
    t, meta = _load("tip_adapter")
    settings = official_settings(meta)
    model = tip_model("tip_adapter", t["clip_weights"])
    model.set_cache(t["augmented_views"].mean(dim=0), t["shot_labels"])
    assert max_diff(model.cache_keys.t(), t["cache_keys"]) <= TOLERANCE
    model.config.alpha, model.config.beta = settings.init_alpha, settings.init_beta
    assert max_diff(logits(model, t["val_features"]), t["val_tip_logits_init"]) <= TOLERANCE
    model.config.alpha, model.config.beta = meta["alpha_list"][-1], meta["beta_list"][-1]
    assert max_diff(logits(model, t["val_features"]), t["val_tip_logits_grid_last"]) <= TOLERANCE
    assert tip_adapter.official_grid(settings.beta_scale, settings.beta_steps) == meta["beta_list"]
    assert tip_adapter.official_grid(settings.alpha_scale, settings.alpha_steps) == meta["alpha_list"]
    chosen = tip_adapter.choose_alpha_beta(model, LabelledFeatures(t["val_features"], t["val_labels"], CLASS_NAMES), settings)
    # four grid points tie at the best accuracy: the first in beta-major order wins, as in search_hp
    assert (chosen["beta"], chosen["alpha"]) == (meta["best_beta"], meta["best_alpha"])
    assert chosen["val_accuracy"] == pytest.approx(max(meta["grid_val_accuracy"]) / 100)
    assert max_diff(logits(model, t["test_features"]), t["test_tip_logits_best"]) <= TOLERANCE


def test_one_tip_adapter_f_step_matches_tip():
    t, meta = _load("tip_adapter_f")
    settings = official_settings(meta)
    model = tip_model("tip_adapter_f", t["clip_weights"])
    model.set_cache(t["adapter_weight_init"], t["cache_values"].argmax(-1))
    model.config.alpha, model.config.beta = settings.init_alpha, settings.init_beta
    train = LabelledFeatures(F.normalize(t["train_features"], dim=-1), t["train_labels"], CLASS_NAMES)
    assert max_diff(logits(model, train.features), t["train_tip_logits_step0"]) <= TOLERANCE
    train_on_features(model, train, settings)
    assert max_diff(model.cache_keys.detach(), t["adapter_weight_step1"]) <= TOLERANCE
    assert max_diff(logits(model, t["test_features"]), t["test_tip_logits_after_step1"]) <= 1e-4
    chosen = tip_adapter.choose_alpha_beta(model, LabelledFeatures(t["val_features"], t["val_labels"], CLASS_NAMES), settings)
    assert (chosen["beta"], chosen["alpha"]) == (meta["best_beta"], meta["best_alpha"])
