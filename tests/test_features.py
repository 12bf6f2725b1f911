"""The frozen-encoder feature cache: one pass per image, clear errors for unreadable images."""

import io

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

import hf_zsl
from hf_zsl.features import image_features


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def image_dataset(arrays, name="set"):
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})
    rows = {"image": [{"bytes": _png(a), "path": None} for a in arrays], "label": [i % 2 for i in range(len(arrays))]}
    return datasets.Dataset.from_dict(rows, features=features)


@pytest.fixture
def model(tiny_base):
    return hf_zsl.build("zeroshot", tiny_base)


def test_features_are_computed_once(model, monkeypatch):
    rng = np.random.RandomState(1)
    data = image_dataset([(rng.rand(32, 32, 3) * 255).astype(np.uint8) for _ in range(5)])
    first = image_features(model, data, progress=False)
    assert first.shape == (5, model.encoder.embed_dim)
    torch.testing.assert_close(first.norm(dim=-1), torch.ones(5))
    monkeypatch.setattr(type(model), "encode_images", lambda *a, **k: pytest.fail("features were recomputed"))
    assert torch.equal(image_features(model, data, progress=False), first)


def test_features_match_the_model(model):
    rng = np.random.RandomState(2)
    arrays = [(rng.rand(40, 36, 3) * 255).astype(np.uint8) for _ in range(3)]
    cached = image_features(model, image_dataset(arrays), progress=False)
    pixels = model.image_processor(images=[Image.fromarray(a) for a in arrays], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        torch.testing.assert_close(cached, model.encode_images(pixels))


def test_grayscale_rows_are_converted(model):
    gray = np.full((32, 32), 128, dtype=np.uint8)
    features = image_features(model, image_dataset([gray, np.stack([gray] * 3, -1)]), progress=False)
    torch.testing.assert_close(features[0], features[1])


def test_unreadable_image_names_the_rows(model):
    data = image_dataset([np.zeros((32, 32, 3), dtype=np.uint8)] * 2)
    broken = data.cast_column("image", datasets.Image(decode=False)).map(
        lambda row, i: {"image": {"bytes": b"not a png" if i == 1 else row["image"]["bytes"], "path": None}},
        with_indices=True,
    ).cast_column("image", datasets.Image())
    with pytest.raises(ValueError, match="rows 0-63 could not be decoded"):
        image_features(model, broken, progress=False)


def test_missing_image_column(model):
    with pytest.raises(ValueError, match="no image column 'pixels'"):
        image_features(model, image_dataset([np.zeros((32, 32, 3), dtype=np.uint8)]), image_column="pixels")


def test_augmented_views_are_seeded_cached_and_keyed_apart(model, monkeypatch, tmp_path):
    rng = np.random.RandomState(3)
    data = image_dataset([(rng.rand(32, 40, 3) * 255).astype(np.uint8) for _ in range(3)])
    plain = image_features(model, data, progress=False)
    views = image_features(model, data, progress=False, augment_views=4, augment_seed=7)
    assert views.shape == (4, 3, model.encoder.embed_dim)
    torch.testing.assert_close(views.norm(dim=-1), torch.ones(4, 3))
    assert not torch.allclose(views[0], views[1]) and not torch.allclose(views[0], plain)
    # A view depends on (seed, view, row) only: another batch size and fewer views, computed afresh
    # in an empty cache, give the same features.
    monkeypatch.setattr("hf_zsl.features.cache_root", lambda *parts: str(tmp_path.joinpath(*parts)))
    fewer = image_features(model, data, batch_size=2, progress=False, augment_views=2, augment_seed=7)
    torch.testing.assert_close(fewer, views[:2])
    other_seed = image_features(model, data, progress=False, augment_views=4, augment_seed=8)
    assert not torch.allclose(other_seed, views)
    monkeypatch.setattr(type(model), "encode_images", lambda *a, **k: pytest.fail("features were recomputed"))
    assert torch.equal(image_features(model, data, progress=False, augment_views=4, augment_seed=8), other_seed)


def test_augmentation_crops_inside_the_image_and_keeps_its_size():
    from hf_zsl.augmentation import augment, crop_box

    rng = np.random.default_rng(0)
    for width, height in [(32, 32), (50, 20), (7, 90)]:
        for _ in range(50):
            left, top, right, bottom = crop_box(width, height, rng)
            assert 0 <= left < right <= width and 0 <= top < bottom <= height
    image = Image.fromarray((np.random.RandomState(4).rand(20, 30, 3) * 255).astype(np.uint8))
    assert augment(image, 0, 1, 2).size == image.size
    assert np.array_equal(np.asarray(augment(image, 0, 1, 2)), np.asarray(augment(image, 0, 1, 2)))
    assert not np.array_equal(np.asarray(augment(image, 0, 1, 2)), np.asarray(augment(image, 0, 2, 2)))
