"""push_to_hub end to end: the real huggingface_hub / transformers clients against a stub Hub on loopback."""

import json
import socket

import pytest
import torch
from huggingface_hub import HfApi, ModelCard, hf_hub_download, snapshot_download
from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError
from conftest import LABELS
from hub_stub import stub_hub_fixture  # noqa: F401  (provides the `stub_hub` fixture)
from safetensors.torch import save_file
from transformers import AutoModelForZeroShotImageClassification, CLIPConfig, CLIPModel

import hf_zsl
from hf_zsl.cards import render_model_card, write_model_card

CARD_INFO = {
    "method": "zeroshot",
    "model_type": "hfzsl_zeroshot",
    "base_model": "openai/clip-vit-base-patch32",
    "templates": ["a photo of a {}."],
    "hyperparameters": {},
    "protocol": None,
    "results": [{"dataset": "shapes", "protocol": "zeroshot", "accuracy": 0.5}],
}


@pytest.fixture
def folder(tmp_path):
    """A model folder: config.json, model.safetensors and a model card."""
    root = tmp_path / "model"
    root.mkdir()
    (root / "config.json").write_text(json.dumps({"model_type": "hfzsl_zeroshot", "templates": ["a {}."]}))
    save_file({"weight": torch.arange(12, dtype=torch.float32).reshape(3, 4)}, str(root / "model.safetensors"))
    render_model_card(CARD_INFO).save(root / "README.md")
    return root


def _bytes(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_upload_folder_then_download_same_bytes(stub_hub, folder, tmp_path):
    api = HfApi(endpoint=stub_hub.url)
    api.create_repo("user/folder")
    api.upload_folder(repo_id="user/folder", folder_path=folder, commit_message="add model")
    assert api.list_repo_files("user/folder") == sorted(_bytes(folder))
    assert stub_hub.files("user/folder") == _bytes(folder)

    # Default endpoint (the patched constants), not the explicit one.
    config = hf_hub_download("user/folder", "config.json")
    assert open(config, "rb").read() == (folder / "config.json").read_bytes()
    snapshot = snapshot_download("user/folder", cache_dir=tmp_path / "snapshots")
    assert _bytes(type(folder)(snapshot)) == _bytes(folder)
    info = api.model_info("user/folder")
    assert {s.rfilename for s in info.siblings} == set(_bytes(folder))
    assert [b.target_commit for b in api.list_repo_refs("user/folder").branches] == [info.sha]

    card = ModelCard.load("user/folder")
    assert card.data.to_dict()["pipeline_tag"] == "zero-shot-image-classification"
    assert card.data.eval_results[0].metric_value == 0.5


def test_model_card_push_to_hub_and_errors(stub_hub, tmp_path):
    HfApi().create_repo("user/card-only")
    card = render_model_card(CARD_INFO)
    card.push_to_hub("user/card-only")
    assert stub_hub.files("user/card-only")["README.md"].decode() == str(card)
    assert ("POST", "/api/validate-yaml") in stub_hub.requests

    with pytest.raises(EntryNotFoundError):
        hf_hub_download("user/card-only", "config.json")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("user/missing", "config.json")


def test_unchanged_files_are_not_committed_again(stub_hub, folder):
    api = HfApi()
    api.create_repo("user/again")
    first = api.upload_folder(repo_id="user/again", folder_path=folder).oid
    second = api.upload_folder(repo_id="user/again", folder_path=folder).oid
    assert first == second
    (folder / "config.json").write_text("{}")
    assert api.upload_folder(repo_id="user/again", folder_path=folder).oid != first
    assert stub_hub.files("user/again", revision=first)["config.json"] != b"{}"


def test_transformers_push_to_hub_and_from_pretrained(stub_hub):
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "vocab_size": 600, "max_position_embeddings": 16, "bos_token_id": 0, "eos_token_id": 1,
                     "pad_token_id": 1},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    model = CLIPModel(config).eval()
    model.push_to_hub("user/tiny-clip")
    assert {"config.json", "model.safetensors", "README.md"} <= set(stub_hub.files("user/tiny-clip"))

    loaded = CLIPModel.from_pretrained("user/tiny-clip").eval()
    expected, got = model.state_dict(), loaded.state_dict()
    assert expected.keys() == got.keys()
    for name, tensor in expected.items():
        assert torch.equal(tensor, got[name]), name


def _logits(model, images) -> torch.Tensor:
    text = model.tokenizer(LABELS, padding=True, return_tensors="pt")
    pixels = model.image_processor(images=images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        return model(input_ids=text["input_ids"], attention_mask=text["attention_mask"],
                     pixel_values=pixels).logits_per_image


def test_hf_zsl_model_with_card_round_trip(stub_hub, tiny_base, images, tmp_path):
    model = hf_zsl.build("zeroshot", tiny_base, templates="imagenet7").eval()
    folder = tmp_path / "zeroshot"
    model.save_pretrained(folder)
    write_model_card({"method": "zeroshot", "model_type": model.config.model_type, "base_model": tiny_base,
                      "templates": model.config.templates, "hyperparameters": {}, "protocol": None,
                      "results": [{"dataset": "shapes", "protocol": "zeroshot", "accuracy": 0.9}]}, folder)
    HfApi().create_repo("user/zeroshot")
    HfApi().upload_folder(repo_id="user/zeroshot", folder_path=folder)

    loaded = AutoModelForZeroShotImageClassification.from_pretrained("user/zeroshot").eval()
    assert torch.equal(_logits(loaded, images), _logits(model, images))
    card = ModelCard.load("user/zeroshot")
    assert card.data.tags == ["hf_zsl", "zeroshot"] and card.data.eval_results[0].metric_value == 0.9

    model.card_info = {"protocol": {"kind": "fewshot", "k": 16, "seed": 1},
                       "results": [{"dataset": "shapes", "protocol": "fewshot", "accuracy": 0.5}]}
    model.push_to_hub("user/zeroshot-direct")
    direct = AutoModelForZeroShotImageClassification.from_pretrained("user/zeroshot-direct").eval()
    assert torch.equal(_logits(direct, images), _logits(model, images))
    pushed_card = ModelCard.load("user/zeroshot-direct")  # our card, not transformers' generic one
    assert pushed_card.data.tags == ["hf_zsl", "zeroshot"] and pushed_card.data.eval_results[0].metric_value == 0.5
    assert "itap of a {}." in pushed_card.text


def test_fixture_refuses_connections_off_loopback(stub_hub):
    assert HfApi().whoami()["name"] == "user"  # the dummy token reaches the stub
    with pytest.raises(ConnectionRefusedError, match="tests stay on loopback"):
        socket.create_connection(("192.0.2.1", 443), timeout=1)  # TEST-NET-1: never routed
    assert stub_hub.refused == [("192.0.2.1", 443)]
    stub_hub.refused.clear()  # expected here; the fixture fails any other test that leaves loopback
