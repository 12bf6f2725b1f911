"""What makes RTOS that method: relation value R, anchors that are not targets, learnable anchor
tokens pooled at end-of-text, the zero-shot mode, and fitting in both modes."""

import datasets
import pytest
import torch
import torch.nn.functional as F
from test_linear_probe import colour_data

import hf_zsl
from hf_zsl.evaluation import evaluate_protocol
from hf_zsl.methods import rtos
from hf_zsl.protocols import FewShotProtocol
from hf_zsl.training import FitSettings

TARGETS = ["red circle", "blue square", "green star"]
VOCABULARY = ["red", "blue", "circle", "crimson", "red circle", "star"]  # "crimson": several tokens in the tiny BPE


@pytest.fixture(scope="module")
def model(tiny_base):
    return hf_zsl.build("rtos", tiny_base, class_names=TARGETS, anchor_vocabulary=VOCABULARY)


def label_ids(model, labels):
    return [tuple(model.tokenizer(name, add_special_tokens=False)["input_ids"]) for name in labels]


def test_relation_rows_sum_to_one_over_anchors(model):
    targets = F.normalize(torch.randn(4, 32), dim=-1)
    with torch.no_grad():
        relation = model.relation_matrix(targets, model.anchor_features())
    assert relation.shape == (4, len(model.config.anchor_names))
    torch.testing.assert_close(relation.sum(-1), torch.ones(4))
    assert (relation >= 0).all()


def test_anchors_exclude_targets(model):
    assert model.config.anchor_names == ["red", "blue", "circle", "crimson", "star"]  # "red circle" is a target
    assert model.anchor_mask(label_ids(model, ["blue", "cat"])) == [True, False, True, True, True]


def test_anchor_named_like_a_label_is_masked_at_call_time(model):
    image = F.normalize(torch.randn(2, 32), dim=-1)
    labels = label_ids(model, ["star", "cat"])
    with torch.no_grad():
        targets = model.label_features(labels)
        logits = model.compute_logits(image, targets, labels)
        kept = model.anchor_features()[:4]  # every anchor but "star"
        transition = len(kept) * model.relation_transition(image, targets, kept)
        expected = model.logit_scale * (image @ targets.t() + model.config.alpha * transition)
    torch.testing.assert_close(logits, expected)


def test_anchor_placeholders_start_as_the_names_pooled_at_end_of_text(model):
    prompts = [f"a photo of a {name}." for name in model.config.anchor_names]
    text = model.tokenizer(prompts, padding=True, return_tensors="pt")
    with torch.no_grad():
        reference = F.normalize(model.encoder.model.get_text_features(**text).pooler_output, dim=-1)
        ours = model.encode_anchors()
    torch.testing.assert_close(ours, reference)
    # The placeholders are real tokens of the saved tokenizer, with ids above end-of-text.
    placeholders = model.config.anchor_placeholder_ids
    assert len(placeholders[3]) > 1 and all(len(ids) == 1 for i, ids in enumerate(placeholders) if i != 3)
    eos = model.config.base_config.text_config.eos_token_id
    assert min(i for ids in placeholders for i in ids) > eos
    written = model.tokenizer("a photo of a <|anchor0.0|>.", add_special_tokens=False)["input_ids"]
    assert written == [*model.config.anchor_template_ids[0], *placeholders[0], *model.config.anchor_template_ids[1]]


def test_learned_anchor_rows_change_anchor_features(model):
    learned = model.anchor_tokens.tokens.trainable_tokens_delta["default"]
    with torch.no_grad():
        before = model.anchor_features().clone()
        learned[0] += 1.0
        after = model.anchor_features()
        learned[0] -= 1.0
    assert not torch.allclose(before[0], after[0])
    torch.testing.assert_close(before[1:], after[1:])


def test_zero_shot_mode_with_alpha_zero_is_zero_shot_clip(tiny_base):
    templates = ["a photo of a {}.", "art of the {}."]
    ours = hf_zsl.build("rtos", tiny_base, class_names=TARGETS, mode="zero_shot", alpha=0.0, templates=templates)
    clip = hf_zsl.build("zeroshot", tiny_base, templates=templates)
    text = clip.tokenizer([*TARGETS, "cat"], padding=True, return_tensors="pt")
    image = F.normalize(torch.randn(3, 32), dim=-1)
    with torch.no_grad():
        torch.testing.assert_close(ours(**text, image_embeds=image).logits_per_image, clip(**text, image_embeds=image).logits_per_image)
        ours.config.alpha = 1.0
        assert not torch.allclose(ours(**text, image_embeds=image).logits_per_image, clip(**text, image_embeds=image).logits_per_image)


def test_untrained_attention_is_clip_zero_shot_over_anchors(model):
    image = F.normalize(torch.randn(3, 32), dim=-1)
    with torch.no_grad():
        anchors = model.anchor_features()
        expected = torch.softmax(model.logit_scale * image @ anchors.t(), dim=-1)
        torch.testing.assert_close(model.anchor_attention(image, anchors), expected)


def test_only_anchor_rows_and_rtm_projections_get_gradients(model):
    model.train()
    text = model.tokenizer(TARGETS, padding=True, return_tensors="pt")
    image = F.normalize(torch.randn(3, 32), dim=-1)
    model(**text, image_embeds=image, labels=torch.tensor([0, 1, 2])).loss.backward()
    model.eval()
    with_grad = {name for name, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert with_grad == {
        "anchor_tokens.tokens.trainable_tokens_delta.default", "query_projection.weight", "key_projection.weight"
    }
    assert "anchor_tokens.tokens.base_layer.weight" in dict(model.named_buffers())
    model.zero_grad(set_to_none=True)


def colour_protocol() -> FewShotProtocol:
    data = datasets.DatasetDict({"train": colour_data(0), "validation": colour_data(1), "test": colour_data(2)})
    return FewShotProtocol(data, k=8, seed=0, val_policy="fewshot_min(k,4)")


def test_zero_shot_mode_fit_only_chooses_alpha_and_tau(tiny_base):
    protocol = colour_protocol()
    model = hf_zsl.build("rtos", tiny_base, preset="embedded", class_names=protocol.train_class_names, mode="zero_shot")
    before = {k: v.clone() for k, v in model.learned_state_dict().items()}
    info = rtos.fit(model, protocol.training_view())
    assert info["alpha"] in rtos.ALPHA_GRID and info["tau"] in rtos.TAU_GRID
    assert (model.config.alpha, model.config.tau) == (info["alpha"], info["tau"])
    for key, value in model.learned_state_dict().items():
        assert torch.equal(value, before[key]), key


def test_few_shot_mode_fit_learns_anchors_and_rtm(tiny_base):
    protocol = colour_protocol()
    model = hf_zsl.build("rtos", tiny_base, preset="embedded", class_names=protocol.train_class_names)
    learned = model.anchor_tokens.tokens.trainable_tokens_delta["default"]
    start = learned.detach().clone()
    info = rtos.fit(model, protocol.training_view(), FitSettings(epochs=20, batch_size=24, learning_rate=5e-2))
    assert not torch.equal(learned.detach().cpu(), start)
    assert not torch.equal(model.query_projection.weight.detach().cpu(), torch.eye(32))
    accuracy = evaluate_protocol(model, protocol)["accuracy"]
    assert info["val_accuracy"] > 0.9 and accuracy > 0.9, (info, accuracy)
