"""What makes CoOp that method: learned context tokens in front of the label, and nothing else learned."""

import datasets
import pytest
import torch
from test_linear_probe import colour_data
from transformers import AutoModelForZeroShotImageClassification

import hf_zsl
from hf_zsl.methods import coop
from hf_zsl.protocols import FewShotProtocol
from hf_zsl.training import FitSettings

TRAINED = ["red circle", "blue square"]


def text_embeds(model, labels):
    text = model.tokenizer(labels, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**text, image_embeds=torch.zeros(1, model.encoder.embed_dim)).text_embeds


def set_context(model, values):
    with torch.no_grad():
        model.context.copy_(values)


def test_ctx_init_is_the_word_embeddings_and_pools_at_end_of_text(tiny_base):
    model = hf_zsl.build("coop", tiny_base, ctx_init="a photo of a")
    words = model.tokenizer("a photo of a", add_special_tokens=False)["input_ids"]
    assert model.config.n_ctx == len(words) == 4
    embedding = model.encoder.token_embedding.weight
    assert torch.equal(model.context, embedding[words])
    # The placeholders' ids are above the end-of-text id, so pooling at argmax(input_ids) would land on a
    # context token; pooling at the real end-of-text token makes the initial prompt the hand-written one.
    eos = model.config.base_config.text_config.eos_token_id
    assert eos == model.tokenizer.eos_token_id and min(model.config.context_token_ids) > eos
    zeroshot = hf_zsl.build("zeroshot", tiny_base, templates=["a photo of a {}."])
    labels = ["red circle", "cat", "green star"]
    torch.testing.assert_close(text_embeds(model, labels), text_embeds(zeroshot, labels), atol=1e-5, rtol=0)


def test_unified_and_class_specific_shapes(tiny_base, tmp_path):
    unified = hf_zsl.build("coop", tiny_base)
    width = unified.encoder.text_width
    assert unified.context.shape == (16, width)
    specific = hf_zsl.build("coop", tiny_base, n_ctx=3, class_specific_context=True, class_names=TRAINED)
    assert specific.context.shape == (len(TRAINED), 3, width)
    for model in (unified, specific):
        assert [name for name, p in model.named_parameters() if p.requires_grad] == [
            "context_tokens.tokens.trainable_tokens_delta.default"
        ]
    # The saved tokenizer carries the placeholders with the ids the config names.
    specific.save_pretrained(tmp_path)
    loaded = AutoModelForZeroShotImageClassification.from_pretrained(tmp_path)
    names = ["<|hfzsl_ctx_0|>", "<|hfzsl_ctx_1_2|>"]
    ids = [specific.config.context_token_ids[0], specific.config.class_context_token_ids[1][2]]
    assert loaded.tokenizer.convert_tokens_to_ids(names) == ids
    assert torch.equal(loaded.context, specific.context)


def test_bad_builds(tiny_base):
    with pytest.raises(ValueError, match="4 tokens but n_ctx is 8"):
        hf_zsl.build("coop", tiny_base, ctx_init="a photo of a", n_ctx=8)
    with pytest.raises(ValueError, match="pass class_names"):
        hf_zsl.build("coop", tiny_base, class_specific_context=True)
    with pytest.raises(ValueError, match="no templates"):
        hf_zsl.build("coop", tiny_base, templates=["a photo of a {}."])


def test_open_vocabulary_labels_get_the_learned_context(tiny_base):
    generator = torch.Generator().manual_seed(0)
    unified = hf_zsl.build("coop", tiny_base, n_ctx=4)
    before = text_embeds(unified, ["cat", "red circle"])
    set_context(unified, torch.randn(unified.context.shape, generator=generator))
    after = text_embeds(unified, ["cat", "red circle"])
    assert not torch.allclose(before, after, atol=1e-3)

    specific = hf_zsl.build("coop", tiny_base, n_ctx=4, class_specific_context=True, class_names=TRAINED)
    set_context(specific, torch.randn(specific.context.shape, generator=generator))
    ours = text_embeds(specific, ["blue square", "cat"])
    # A trained class uses its own context; a new label the mean of the class contexts.
    set_context(unified, specific.context[1])
    torch.testing.assert_close(ours[0], text_embeds(unified, ["blue square"])[0], atol=1e-5, rtol=0)
    set_context(unified, specific.context.mean(dim=0))
    torch.testing.assert_close(ours[1], text_embeds(unified, ["cat"])[0], atol=1e-5, rtol=0)


def test_fit_trains_only_the_context(tiny_base):
    data = datasets.DatasetDict({"train": colour_data(0), "validation": colour_data(1), "test": colour_data(2)})
    protocol = FewShotProtocol(data, k=8, seed=0, val_policy="fewshot_min(k,4)")
    model = hf_zsl.build("coop", tiny_base, n_ctx=4)
    frozen = {k: v.clone() for k, v in model.state_dict().items() if k != "context_tokens.tokens.trainable_tokens_delta.default"}
    start = model.context.detach().clone()
    before = coop.validation_accuracy(model, protocol.training_view())
    info = coop.fit(model, protocol.training_view(), FitSettings(epochs=12, batch_size=24, learning_rate=5e-2))
    assert info["train_seconds"] > 0 and info["val_accuracy"] >= before
    assert model.config.fit_learning_rate == info["learning_rate"]
    assert not torch.allclose(model.context, start)
    for key, value in model.state_dict().items():
        if key in frozen:
            assert torch.equal(value.cpu(), frozen[key]), key  # base embedding and towers unchanged
