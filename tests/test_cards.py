"""Model cards: rendered from model_cards/ templates, metadata with model-index that parses back."""

import pytest
from huggingface_hub import ModelCard

from hf_zsl.cards import available_methods, render_model_card, write_model_card

OPEN_VOCABULARY = "Label strings not seen in training are scored by"


def _info(**overrides) -> dict:
    info = {
        "method": "zeroshot",
        "model_type": "hfzsl_zeroshot",
        "base_model": "openai/clip-vit-base-patch32",
        "templates": ["itap of a {}.", "art of the {}."],
        "hyperparameters": {"templates": "imagenet7"},
        "protocol": {"kind": "fewshot", "k": 16, "seed": 1, "val_policy": "last epoch, no validation split"},
        "results": [
            {"dataset": "shapes", "protocol": "fewshot", "shots": 16, "seed": 1, "accuracy": 0.71},
            {"dataset": "shapes", "protocol": "gzsl", "seen": 0.8, "unseen": 0.5, "harmonic": 0.6154},
        ],
    }
    return info | overrides


def test_metadata_parses_back_with_model_index(tmp_path):
    path = write_model_card(_info(), tmp_path)
    assert path == tmp_path / "README.md"
    card = ModelCard.load(path)
    data = card.data.to_dict()
    assert data["library_name"] == "transformers"
    assert data["pipeline_tag"] == "zero-shot-image-classification"
    assert data["tags"] == ["hf_zsl", "zeroshot"]
    assert data["base_model"] == "openai/clip-vit-base-patch32"
    assert "model-index" in data
    got = {(r.dataset_config, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert got == {("fewshot", "accuracy"): 0.71, ("gzsl", "seen"): 0.8, ("gzsl", "unseen"): 0.5,
                   ("gzsl", "harmonic"): 0.6154}
    assert {r.task_type for r in card.data.eval_results} == {"zero-shot-image-classification"}
    assert {r.dataset_type for r in card.data.eval_results} == {"shapes"}


def test_text_states_protocol_templates_and_open_vocabulary():
    text = render_model_card(_info()).text
    assert "| k | 16 |" in text and "| seed | 1 |" in text
    assert "last epoch, no validation split" in text
    assert "`itap of a {}.`" in text and "`art of the {}.`" in text
    assert OPEN_VOCABULARY in text
    assert "| shapes | fewshot, 16 shots | 71.0 |" in text
    assert "| shapes | gzsl |  | 80.0 | 50.0 | 61.5 |" in text
    assert "`openai/clip-vit-base-patch32`" in text


def test_untrained_unevaluated_card_over_a_local_base(tmp_path):
    card = render_model_card(_info(base_model=str(tmp_path), protocol=None, results=[], templates=None))
    data = card.data.to_dict()
    assert "base_model" not in data, "a local folder is not a Hub id"
    assert "model-index" not in data
    assert str(tmp_path) in card.text
    assert "No training protocol" in card.text and "Not evaluated yet." in card.text
    assert "No hand-written template" in card.text


def test_embedded_base_is_not_hub_metadata():
    assert "base_model" not in render_model_card(_info(base_model="embedded")).data.to_dict()


@pytest.mark.parametrize("method", available_methods())
def test_every_method_template_fills_every_section(method):
    card = render_model_card(_info(method=method, model_type=f"hfzsl_{method}"))
    sections = card.text.split("\n## ")[1:]
    assert {s.split("\n", 1)[0] for s in sections} >= {"Method", "What is learned", "Choices made",
                                                        "Prompt templates", "Open-vocabulary behaviour", "Protocol"}
    for section in sections:
        title, body = section.split("\n", 1)
        assert body.strip(), f"{method}: section {title!r} is empty"
    open_vocab = next(s for s in sections if s.startswith("Open-vocabulary"))
    assert open_vocab.split(OPEN_VOCABULARY, 1)[1].strip(), "the open-vocabulary sentence is not completed"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"base_model": None}, "lacks \\['base_model'\\]"),
        ({"method": "nosuchmethod"}, "no model card template for method 'nosuchmethod'"),
        ({"results": [{"dataset": "shapes", "accuracy": 0.5}]}, "needs 'dataset' and 'protocol'"),
        ({"results": [{"dataset": "shapes", "protocol": "fewshot", "accuracy": 71.0}]}, "not a fraction"),
    ],
)
def test_bad_info_raises(overrides, message):
    with pytest.raises(ValueError, match=message):
        render_model_card(_info(**overrides))


def test_zeroshot_is_available():
    assert "zeroshot" in available_methods()
