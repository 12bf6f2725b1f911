"""The shapes world: rendering, captions, vocabulary, cached deterministic datasets, the suite's protocols."""

import dataclasses
import hashlib
import os
import re
import subprocess
import sys
import time

import datasets
import numpy as np
import pytest

from hf_zsl import shapes
from hf_zsl.shapes.captions import BACKGROUND_WORDS, FILL_WORDS, RARE_COLOUR_WORDS, SIZE_WORDS
from hf_zsl.templates import TEMPLATE_SETS
from hf_zsl.tokenizer import build_clip_tokenizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = shapes.TaskSpec(
    "small",
    "a small test task",
    distribution=shapes.Distribution(colours=("red", "blue"), shapes=("star", "circle", "heart")),
    split_sizes=(("train", 4), ("validation", 2), ("test", 3)),
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private ``HF_ZSL_CACHE`` for the module."""
    with pytest.MonkeyPatch.context() as patch:
        folder = str(tmp_path_factory.mktemp("hf_zsl_cache"))
        patch.setenv("HF_ZSL_CACHE", folder)
        yield folder


def image_digest(dataset) -> str:
    """Digest of the encoded image bytes of every row."""
    encoded = dataset.cast_column("image", datasets.Image(decode=False))["image"]
    return hashlib.sha256(b"".join(image["bytes"] for image in encoded)).hexdigest()


def small_task_folders(cache: str) -> list[str]:
    return [name for name in os.listdir(os.path.join(cache, "shapes")) if name.startswith("task-small-")]


def test_world_is_varied_enough():
    assert len(shapes.SHAPES) >= 8 and len(shapes.COLOURS) >= 8 and len(shapes.BACKGROUNDS) >= 5
    assert set(shapes.SIZES) == {"small", "large"} and set(shapes.FILLS) == {"solid", "outline"}


@pytest.mark.parametrize("size", [32, 64])
def test_render_gives_rgb_images_with_varied_backgrounds(size):
    rng = np.random.default_rng(0)
    stds = {}
    for style in shapes.BACKGROUNDS:
        scene = shapes.sample_scenes(rng, 1, shapes.Distribution(), background=style, size="small")[0]
        image = shapes.render_scene(dataclasses.replace(scene, x=0.75), size)
        assert image.shape == (size, size, 3) and image.dtype == np.uint8
        stds[style] = image[:, : size // 4].reshape(-1, 3).std(0).max()  # a strip the shape does not cover
    assert stds["plain"] < 5
    assert all(stds[s] > 5 for s in ("noise", "stripes", "checkers", "grid"))
    with pytest.raises(ValueError, match="between 8 and 64"):
        shapes.render_scene(scene, 128)


def test_captions_name_the_attributes_of_their_image():
    rng = np.random.default_rng(1)
    all_colours = set(shapes.COLOURS) | set(RARE_COLOUR_WORDS.values())
    for scene in shapes.sample_scenes(rng, 400, shapes.Distribution(lightings=shapes.LIGHTINGS)):
        caption = shapes.describe(scene, rng, shapes.CaptionStyle(rare_word_rate=0.2))
        words = set(re.findall(r"[a-z]+", caption))
        assert words & all_colours <= {scene.colour, RARE_COLOUR_WORDS[scene.colour]}, caption
        assert words & set(shapes.SHAPES) <= {scene.shape}, caption
        assert words & {scene.shape, scene.colour, RARE_COLOUR_WORDS[scene.colour]}, caption
        for table, value in ((SIZE_WORDS, scene.size), (FILL_WORDS, scene.fill)):
            other = {w for key, synonyms in table.items() if key != value for w in synonyms}
            assert not words & other, caption
        assert not words & {w for key, w in BACKGROUND_WORDS.items() if key != scene.background}, caption


def test_vocabulary_covers_captions_class_names_and_prompts():
    vocabulary = set(shapes.shapes_vocabulary())
    rng = np.random.default_rng(2)
    scenes = shapes.sample_scenes(rng, 300, shapes.Distribution(lightings=shapes.LIGHTINGS))
    texts = [shapes.describe(scene, rng) for scene in scenes]
    texts += [name for spec in shapes.TASKS.values() for name in spec.class_names()]
    texts += [t for name in ("single", "imagenet7", "pipeline") for t in TEMPLATE_SETS[name]]
    assert {w for text in texts for w in re.findall(r"[a-z]+", text.lower())} <= vocabulary
    tokenizer = build_clip_tokenizer(sorted(vocabulary))
    for text in texts[:50]:
        ids = tokenizer(text)["input_ids"]
        assert ids.count(tokenizer.eos_token_id) == 1 and ids[-1] == tokenizer.eos_token_id  # nothing unknown
        assert tokenizer.decode(ids, skip_special_tokens=True).replace(" .", ".") == text.lower()


def test_task_generation_is_deterministic_and_cached(cache):
    data = shapes.load_task(SMALL, seed=0)
    assert len(small_task_folders(cache)) == 1
    assert {s: len(d) for s, d in data.items()} == {"train": 24, "validation": 12, "test": 18}
    assert data["train"].features["label"].names == [
        "red star", "red circle", "red heart", "blue star", "blue circle", "blue heart"
    ]
    assert {"image", "label", "caption", *shapes.ATTRIBUTES} <= set(data["train"].column_names)
    row = data["train"][0]
    assert row["image"].mode == "RGB" and row["image"].size == (32, 32)
    assert data["train"].features["label"].int2str(row["label"]) == f"{row['colour']} {row['shape']}"

    start = time.perf_counter()
    again = shapes.load_task(SMALL, seed=0)
    assert time.perf_counter() - start < 1.0
    assert again["train"]._fingerprint == data["train"]._fingerprint
    fresh = shapes.generate_task(SMALL, seed=0)
    assert image_digest(fresh["train"]) == image_digest(data["train"])
    assert fresh["train"]["caption"] == data["train"]["caption"]
    assert image_digest(shapes.generate_task(SMALL, seed=1)["train"]) != image_digest(data["train"])
    assert len(small_task_folders(cache)) == 1  # generate_task never writes


def test_generation_is_the_same_in_another_process():
    # Import hf_zsl.shapes without hf_zsl/__init__ (which loads torch and transformers: slow).
    script = f"""
import sys, types
package = types.ModuleType("hf_zsl"); package.__path__ = [{os.path.join(REPO, "hf_zsl")!r}]
sys.modules["hf_zsl"] = package
sys.path.insert(0, {os.path.join(REPO, "tests")!r})
from test_shapes import SMALL, image_digest
from hf_zsl.shapes import generate_task
print(image_digest(generate_task(SMALL, seed=0)["test"]))
"""
    env = dict(os.environ, PYTHONHASHSEED="99")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split()[-1] == image_digest(shapes.generate_task(SMALL, seed=0)["test"])


def test_suite_holds_out_what_it_tests():
    assert len(shapes.FEWSHOT_TASKS) >= 5
    unseen = {shapes.class_name({"colour": c, "shape": s}) for c, s in shapes.UNSEEN_COMBOS}
    for spec in shapes.FEWSHOT_TASKS:
        assert not unseen & set(spec.class_names()), spec.name
        assert dict(spec.split_sizes)["train"] >= 16
    assert set(shapes.TASKS["rare_words"].class_names()[0].split()) & set(RARE_COLOUR_WORDS.values())
    assert not set(shapes.HELD_OUT_BACKGROUNDS) & set(shapes.PRETRAINING.backgrounds)
    assert shapes.PRETRAINING.lightings == ("neutral",)
    assert set(shapes.TASKS["warm_light"].distribution.lightings) == {"warm"}


def test_pretraining_pairs_follow_the_pretraining_distribution(cache):
    pairs = shapes.pretraining_pairs(300, seed=3, captions=shapes.CaptionStyle(rare_word_rate=0.0))
    assert pairs.column_names[:2] == ["image", "caption"]
    assert not set(zip(pairs["colour"], pairs["shape"])) & set(shapes.UNSEEN_COMBOS)
    assert set(pairs["background"]) <= set(shapes.SOURCE_BACKGROUNDS) and set(pairs["lighting"]) == {"neutral"}
    words = {w for caption in pairs["caption"] for w in caption.split()}
    assert not words & set(RARE_COLOUR_WORDS.values())
    assert len(set(pairs["caption"])) > 150


def test_shapes_protocols(cache):
    gzsl = shapes.gzsl()
    assert len(gzsl.class_names) == 80 and len(gzsl.unseen_classes) == len(shapes.UNSEEN_COMBOS)
    assert not set(gzsl.seen_classes) & set(gzsl.unseen_classes)
    assert gzsl.attributes.matrix.shape == (80, len(shapes.COLOURS) + len(shapes.SHAPES))
    assert (gzsl.attributes.matrix.sum(1) == 2).all()
    assert set(gzsl.train["colour"]) == set(shapes.COLOURS)
    assert not {f"{c} {s}" for c, s in zip(gzsl.train["colour"], gzsl.train["shape"])} & set(gzsl.unseen_classes)

    shift = shapes.domain_shift(k=4)
    assert set(shift.train["background"]) <= set(shapes.SOURCE_BACKGROUNDS)
    assert set(shift.test_splits()) == set(shapes.BACKGROUNDS)
    assert set(shift.test_splits()["dots"]["background"]) == {"dots"}

    base_to_new = shapes.base_to_new(k=2)
    assert base_to_new.base_classes == base_to_new.class_names[:28]  # label-id order, as CoCoOp
    assert {name.split()[0] for name in base_to_new.base_classes} == {"red", "orange", "yellow", "green"}


@pytest.mark.parametrize(("make", "lighting"), [(shapes.gzsl, "hue_shift"), (shapes.base_to_new, "warm")])
def test_a_lit_protocol_is_the_clean_one_under_another_lighting(cache, make, lighting):
    clean, lit = make(4, 1), make(4, 1, lighting=lighting)
    assert lit.class_names == clean.class_names and lit.train_class_names == clean.train_class_names
    assert list(lit.train_indices) == list(clean.train_indices)
    assert list(lit.val_indices) == list(clean.val_indices)
    for split in ("train", "validation", "test"):
        before, after = clean.data[split], lit.data[split]
        assert set(after["lighting"]) == {lighting} and set(before["lighting"]) == {"neutral"}, split
        for attribute in ("label", "shape", "colour", "background"):
            assert after[attribute] == before[attribute], (split, attribute)
        pixels = [np.asarray(after[i]["image"], dtype=int) - np.asarray(before[i]["image"]) for i in range(8)]
        assert all(np.abs(difference).max() > 0 for difference in pixels), split
    with pytest.raises(ValueError, match="lightings must be a non-empty subset of"):
        make(4, 1, lighting="sunset")
