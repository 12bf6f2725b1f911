"""``hf-zsl predict`` on the embedded tiny CLIP, with images written here."""

import csv
import json

import pytest
from PIL import Image

from hf_zsl.cli import main

LABELS = ["red circle", "blue square", "green triangle"]


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory, images):
    """``a.png``, ``nested/b.jpg``, ``nested/deeper/c.png`` (the shared test images), a text file that is not an
    image but looks like one (``broken.png``) and one that is skipped (``notes.txt``)."""
    root = tmp_path_factory.mktemp("images")
    (root / "nested" / "deeper").mkdir(parents=True)
    for image, name in zip(images, ["a.png", "nested/b.jpg", "nested/deeper/c.png"]):
        image.save(root / name)
    (root / "broken.png").write_text("not an image")
    (root / "notes.txt").write_text("skipped: not an image extension")
    return root


def _lines(capsys) -> tuple[list[dict], str]:
    captured = capsys.readouterr()
    return [json.loads(line) for line in captured.out.splitlines()], captured.err


def test_folders_are_searched_and_scores_match_the_pipeline(image_folder, capsys):
    from transformers import pipeline

    assert main(["predict", str(image_folder), "--labels", *LABELS]) == 0
    results, err = _lines(capsys)
    assert [r["image"] for r in results] == [
        str(image_folder / name) for name in ["a.png", "broken.png", "nested/b.jpg", "nested/deeper/c.png"]
    ]
    broken = results[1]
    assert "predictions" not in broken and "cannot read" in broken["error"]
    assert f"{image_folder / 'broken.png'}: cannot read" in err
    import hf_zsl

    model = hf_zsl.load("embedded")
    classifier = pipeline(
        "zero-shot-image-classification", model=model, tokenizer=model.tokenizer, image_processor=model.image_processor
    )
    for result in [results[0], *results[2:]]:
        expected = classifier(Image.open(result["image"]), candidate_labels=LABELS)
        assert [p["label"] for p in result["predictions"]] == [e["label"] for e in expected]
        assert [p["score"] for p in result["predictions"]] == pytest.approx([e["score"] for e in expected], abs=1e-5)


def test_top_k_labels_file_templates_and_csv(image_folder, tmp_path, capsys):
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("green triangle\n\nyellow star\n")
    out = tmp_path / "predictions.csv"
    image = str(image_folder / "a.png")
    assert main(["predict", "--labels", "red circle", "blue square", "--labels-file", str(labels_file), "--top-k", "2",
                 "--templates", "imagenet7", "--csv", str(out), "--", image]) == 0  # paths after labels: after --
    (result,), _ = _lines(capsys)
    assert len(result["predictions"]) == 2
    assert result["predictions"][0]["score"] >= result["predictions"][1]["score"]
    assert {p["label"] for p in result["predictions"]} <= {"red circle", "blue square", "green triangle", "yellow star"}
    rows = list(csv.DictReader(out.open()))
    assert [(r["image"], r["rank"], r["label"]) for r in rows] == [
        (image, str(rank), p["label"]) for rank, p in enumerate(result["predictions"], start=1)
    ]
    templates = tmp_path / "templates.txt"
    templates.write_text("a drawing of a {}.\na sketch of a {}.\n")
    scores = {}
    for extra in ([], ["--templates", str(templates)]):
        assert main(["predict", image, "--labels", *LABELS, *extra]) == 0
        (result,), _ = _lines(capsys)
        scores[bool(extra)] = {p["label"]: p["score"] for p in result["predictions"]}
    assert scores[True]["red circle"] != pytest.approx(scores[False]["red circle"], abs=1e-6)


def test_exit_status(image_folder, tmp_path, capsys):
    assert main(["predict", str(image_folder / "broken.png"), "--labels", *LABELS]) == 1  # no image succeeded
    assert "error" in _lines(capsys)[0][0]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["predict", str(empty), "--labels", *LABELS]) == 2
    assert "No image files" in capsys.readouterr().err
    assert main(["predict", str(image_folder / "a.png")]) == 2
    assert "No labels" in capsys.readouterr().err
    assert main(["predict", str(image_folder / "a.png"), "--labels", "cat", "Cat"]) == 2
    assert "remove the duplicate" in capsys.readouterr().err
    assert main(["predict", str(image_folder / "a.png"), "--labels", "cat", "--templates", "no-such-set"]) == 2
    assert "Unknown template set" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["predict", str(image_folder / "a.png"), "--labels", "cat", "--top-k", "0"])


def test_a_trained_model_refuses_templates(tiny_base, image_folder, tmp_path, capsys):
    from hf_zsl import build

    model = build("linear_probe", tiny_base, class_names=["red circle", "blue square"])
    model.save_pretrained(tmp_path / "probe")
    command = ["predict", str(image_folder / "a.png"), "--model", str(tmp_path / "probe"), "--labels", *LABELS]
    assert main(command + ["--templates", "imagenet7"]) == 2
    assert "part of what it learned" in capsys.readouterr().err
    assert main(command) == 0
    (result,), _ = _lines(capsys)
    assert sorted(p["label"] for p in result["predictions"]) == sorted(LABELS)


def test_labels_are_encoded_once_for_all_batches(image_folder):
    import hf_zsl
    from hf_zsl.predict import collect_images, predict_images

    model = hf_zsl.load("embedded")
    paths = collect_images([str(image_folder)])
    results = list(predict_images(model, paths, LABELS, top_k=1, batch_size=1))
    assert [len(r.get("predictions", [])) for r in results] == [1, 0, 1, 1]
    assert model.text_cache.misses == 1
