"""CoOp parity with the official code: hf_zsl's CoOpModel, built over the fixture's tiny OpenAI-CLIP text
tower, reproduces CoOp's text features for every prompt layout, and the ``paper`` preset's optimiser and
schedule reproduce two official SGD steps (fixtures ``coop_prompts``, ``coop_step``; docs §1, §5)."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from test_official_fixtures import _load, openai_text_to_transformers
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

import hf_zsl
from hf_zsl.methods import coop
from hf_zsl.tiny import clip_image_processor
from hf_zsl.tokenizer import BOS_TOKEN, EOS_TOKEN, build_clip_tokenizer, learn_merges
from hf_zsl.training import LabelledFeatures, train_on_features

# CoOp's class names after its `name.replace("_", " ")`, and the OpenAI BPE ids of the tokens they use.
CLASS_NAMES = ["dog", "sea lion", "Apply Eye Makeup", "aircraft carrier"]
OPENAI_IDS = {
    BOS_TOKEN: 49406, EOS_TOKEN: 49407, ".</w>": 269, "dog</w>": 1929, "sea</w>": 2102, "lion</w>": 5567,
    "apply</w>": 4356, "eye</w>": 3272, "makeup</w>": 5853, "aircraft</w>": 7706, "carrier</w>": 12308,
}
TOLERANCE = 1e-5


def openai_tokenizer() -> CLIPTokenizer:
    """A CLIP BPE tokenizer giving the fixture's class-name tokens, ``.``, [SOS] and [EOS] their OpenAI ids
    (the real 49408-token vocabulary is not available offline; every other token gets an id no prompt uses)."""
    words = [w.lower() for name in CLASS_NAMES for w in name.split()] + ["."]
    small = build_clip_tokenizer(words).get_vocab()
    spare = iter(range(30000, 49406))
    vocab = {token: OPENAI_IDS[token] if token in OPENAI_IDS else next(spare) for token in sorted(small, key=small.get)}
    return CLIPTokenizer(vocab=vocab, merges=learn_merges(words), unk_token=EOS_TOKEN, bos_token=BOS_TOKEN,
                         eos_token=EOS_TOKEN, pad_token=EOS_TOKEN, model_max_length=77)


def fixture_clip() -> tuple[CLIPModel, dict]:
    """A ``CLIPModel`` whose text tower and logit scale are the fixture's (vision tower: random, unused)."""
    tensors, meta = _load("coop_prompts")
    tiny = meta["tiny_clip"]
    text = openai_text_to_transformers(tensors, tiny)
    config = CLIPConfig(
        text_config=text.config.to_dict(),
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 16},
        projection_dim=tiny["embed_dim"],
    )
    model = CLIPModel(config).eval()
    state = {k: v for k, v in text.state_dict().items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith(("vision_model", "visual_projection", "logit_scale")) for k in missing)
    model.logit_scale.data.fill_(float(tensors["text_model.logit_scale"]))
    return model, tensors


def coop_model(variant: dict, **hyperparameters):
    base, _ = fixture_clip()
    return hf_zsl.build(
        "coop", base, tokenizer=openai_tokenizer(), image_processor=clip_image_processor(32), class_names=CLASS_NAMES,
        n_ctx=variant["n_ctx"], class_token_position=variant["CLASS_TOKEN_POSITION"],
        class_specific_context=variant["CSC"], **hyperparameters,
    )


def set_context(model, ctx: torch.Tensor) -> None:
    """Load CoOp's ctx `(n_ctx, width)` or class-specific `(n_cls, n_ctx, width)` into the model's context rows."""
    rows = ctx if ctx.ndim == 2 else torch.cat([ctx.mean(dim=0), ctx.flatten(0, 1)])
    model.context_tokens.reset(rows)


def class_labels(model) -> list[tuple[int, ...]]:
    return [tuple(ids) for ids in model.config.class_token_ids]


def test_the_tokenizer_gives_coops_ids():
    tensors, _ = _load("coop_prompts")
    tokenizer = openai_tokenizer()
    for name, row in zip(CLASS_NAMES, tensors["classname_token_ids"]):
        assert tokenizer(name)["input_ids"] == [i for i in row.tolist() if i]


@pytest.mark.parametrize("name", ["end", "middle", "front", "end_csc", "middle_csc", "end_init"])
def test_text_features_match_coop(name):
    tensors, meta = _load("coop_prompts")
    model = coop_model(meta["variants"][name])
    set_context(model, tensors[f"{name}.ctx_init"])
    with torch.no_grad():
        features = model.encode_labels(class_labels(model))
    expected = F.normalize(tensors[f"{name}.text_features"], dim=-1)
    assert (features - expected).abs().max() <= TOLERANCE


@pytest.mark.parametrize("name", ["end", "end_csc"])
def test_two_paper_sgd_epochs_match_coop(name):
    """Epoch 0 at the constant warm-up lr 1e-5, epoch 1 at 0.002 with the momentum buffer of epoch 0:
    the ``paper`` preset's SGD and per-epoch cosine through ``Trainer``, one batch of 8 per epoch."""
    prompts, meta = _load("coop_prompts")
    steps, _ = _load("coop_step")
    view = type("View", (), {"k": 16, "seed": 0})()
    paper = dataclasses.replace(coop.paper(view), batch_size=8, train_views=0, precision="fp32", logging_steps=1)
    data = LabelledFeatures(F.normalize(steps["image_features"], dim=-1), steps["image_labels"], CLASS_NAMES)
    for epochs in (1, 2):
        model = coop_model(meta["variants"][name])
        set_context(model, prompts[f"{name}.ctx_init"])
        if epochs == 1:
            with torch.no_grad():
                logits = model(**model.tokenizer(CLASS_NAMES, padding=True, return_tensors="pt"),
                               image_embeds=data.features).logits_per_image
            assert (logits - steps[f"{name}.logits_step0"]).abs().max() <= 1e-4
        train_on_features(model, data, dataclasses.replace(paper, epochs=epochs))
        expected = steps[f"{name}.ctx_after_epoch{epochs - 1}"]
        assert (model.context.detach() - expected).abs().max() <= TOLERANCE
