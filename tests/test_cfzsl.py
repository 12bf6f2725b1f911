"""What makes CFZSL that method: a CNN in an attribute space plus frozen CLIP in one semantic space,
P×K batches with a batch-hard triplet loss, and calibrated stacking chosen on validation classes."""

import dataclasses

import datasets
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_features import _png

import hf_zsl
from hf_zsl.calibration import choose_calibration
from hf_zsl.evaluation import evaluate_protocol
from hf_zsl.losses import batch_hard_triplet_loss
from hf_zsl.methods import cfzsl
from hf_zsl.protocols import ClassAttributes, FewShotProtocol, GZSLProtocol
from hf_zsl.sampling import PKSampler
from hf_zsl.training import FitSettings

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: a second thread only adds contention

COLOURS = {"red": (210, 30, 30), "green": (30, 190, 30), "blue": (30, 30, 210)}
SHAPES = ("square", "cross")
CLASSES = [f"{colour} {shape}" for colour in COLOURS for shape in SHAPES]
UNSEEN = ["red cross", "blue square"]
ATTRIBUTES = ClassAttributes(
    [[float(c == colour) for c in COLOURS] + [float(s == shape) for s in SHAPES] for colour, shape in
     (name.split() for name in CLASSES)],
    CLASSES,
    [*COLOURS, *SHAPES],
)


def draw(colour: str, shape: str, rng: np.random.RandomState) -> np.ndarray:
    """A 32 px image: a coloured square or cross at a jittered place on a noisy grey background."""
    image = np.clip(120 + rng.randn(32, 32, 3) * 15, 0, 255)
    x, y = rng.randint(6, 14, size=2)
    if shape == "square":
        image[y : y + 14, x : x + 14] = COLOURS[colour]
    else:
        image[y + 5 : y + 9, x : x + 14] = COLOURS[colour]
        image[y : y + 14, x + 5 : x + 9] = COLOURS[colour]
    return image.astype(np.uint8)


def split(per_class: int, seed: int) -> datasets.Dataset:
    rng = np.random.RandomState(seed)
    rows = [(draw(*name.split(), rng), label) for label, name in enumerate(CLASSES) for _ in range(per_class)]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=CLASSES)})
    return datasets.Dataset.from_dict(
        {"image": [{"bytes": _png(a), "path": None} for a, _ in rows], "label": [label for _, label in rows]},
        features=features,
    )


@pytest.fixture(scope="module")
def protocol() -> GZSLProtocol:
    data = datasets.DatasetDict({"train": split(12, 0), "validation": split(4, 1), "test": split(4, 2)})
    return GZSLProtocol(data, UNSEEN, ATTRIBUTES, val_unseen_classes=["green square"])


def build(tiny_base, **kwargs):
    hyperparameters = dict(
        class_names=CLASSES, class_attributes=ATTRIBUTES.matrix, attribute_names=ATTRIBUTES.attribute_names,
        seen_class_names=[c for c in CLASSES if c not in UNSEEN],
    )
    return hf_zsl.build("cfzsl", tiny_base, **(hyperparameters | kwargs))


def batch(model, images, labels=CLASSES):
    text = model.tokenizer(labels, padding=True, return_tensors="pt")
    pixels = model.image_processor(images=images, return_tensors="pt")["pixel_values"]
    return dict(input_ids=text["input_ids"], attention_mask=text["attention_mask"], pixel_values=pixels)


# ---------------------------------------------------------------- shared pieces
@pytest.mark.parametrize(
    "labels, arguments, message",
    [
        ([0.7, 1.2, 1.9, 0.1], {}, "integer class labels"),
        ([0, 1, 1, 0], {"batches_per_epoch": 0}, "batches_per_epoch must be a positive integer"),
        ([0, 1, 1, 0], {"batches_per_epoch": -1}, "batches_per_epoch must be a positive integer"),
        ([0, 1, 1, 0], {"classes_per_batch": 2.5}, "P must be a positive integer"),
    ],
)
def test_pk_sampler_rejects_bad_arguments(labels, arguments, message):
    with pytest.raises(ValueError, match=message):
        PKSampler(labels, **({"classes_per_batch": 2, "images_per_class": 2} | arguments))


def test_pk_sampler_yields_p_by_k_blocks_seeded():
    labels = np.repeat(np.arange(5), [6, 5, 4, 7, 3])
    sampler = PKSampler(labels, classes_per_batch=3, images_per_class=2, seed=4)
    assert sampler.batch_size == 6 and len(sampler) == 6 * (25 // 6)
    first = list(sampler)
    assert len(first) == len(sampler)
    for block in np.asarray(first).reshape(-1, 3, 2):
        block_labels = labels[block]
        assert (block_labels == block_labels[:, :1]).all(), "K images of one class per group"
        assert len(set(block_labels[:, 0])) == 3, "P distinct classes per batch"
        assert all(len(set(group)) == 2 for group in block), "no image twice within a class group"
    again = PKSampler(labels, 3, 2, seed=4)
    assert list(again) == first, "same seed, same batches"
    assert list(sampler) != first, "the next epoch draws new batches"
    sampler.set_epoch(0)
    assert list(sampler) == first
    assert list(PKSampler(labels, 3, 2, seed=5)) != first
    assert set(labels[first]) == set(range(5)), "every class is visited"


def test_batch_hard_triplet_loss_by_hand():
    points = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0], [0.0, 1.0]], requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1])
    # hardest positive / nearest negative: a0 3 / 1, a1 3 / sqrt(10), a2 3 / 4, a3 3 / 1 (margin 1)
    expected = (3.0 + (4.0 - 10**0.5) + 0.0 + 3.0) / 4
    loss = batch_hard_triplet_loss(points, labels, margin=1.0, normalize=False)
    assert loss.item() == pytest.approx(expected, abs=1e-5)
    loss.backward()
    assert torch.isfinite(points.grad).all()
    # an anchor without another image of its class is left out
    alone = batch_hard_triplet_loss(points[:3], labels[:3], margin=2.0, normalize=False)
    assert alone.item() == pytest.approx((max(0.0, 2 + 3 - 4) + max(0.0, 2 + 3 - 5)) / 2, abs=1e-5)
    # with normalisation (the default) distances are between unit vectors
    unit = batch_hard_triplet_loss(torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0, 1]), margin=0.5)
    assert unit.item() == pytest.approx(0.0, abs=1e-5)  # positives coincide, the negative is sqrt(2) away


def test_choose_calibration_maximises_h():
    # columns 0, 1 seen, 2 unseen; images 0-1 of seen classes, 2-3 of the unseen class.
    logits = torch.tensor([[5.0, 1.0, 3.0], [1.0, 5.0, 2.0], [4.0, 0.0, 3.0], [0.0, 3.5, 3.0]])
    references = [0, 1, 2, 2]
    choice = choose_calibration(logits, references, seen_columns=[0, 1], grid=[0.0, 0.75, 1.25, 2.5, 3.5])
    # A constant c moves an image to the unseen class once c exceeds its seen margin (2, 3, 1, 0.5):
    # 0 → S 1, U 0 (H 0); 0.75 → U 0.5 (H 2/3); 1.25 → S 1, U 1 (H 1); 2.5 → S 0.5 (H 2/3); 3.5 → S 0 (H 0).
    assert [round(row[3], 4) for row in choice.grid] == [0.0, 0.6667, 1.0, 0.6667, 0.0]
    assert choice.calibration == 1.25 and (choice.seen, choice.unseen, choice.harmonic) == (1.0, 1.0, 1.0)
    default = choose_calibration(logits, references, seen_columns=[0, 1])
    assert default.harmonic == 1.0 and 1.0 < default.calibration < 2.0


@pytest.mark.parametrize(
    "logits, references, seen, message",
    [
        (torch.tensor([[1.0, float("nan")], [0.0, 1.0]]), [0, 1], [0], "NaN or infinite"),
        (torch.zeros(0, 3), [], [0], "logits of some images"),
        (torch.zeros(3), [0], [0], "logits of some images"),
        (torch.eye(2), [0, 1], [0, 5], r"Seen columns \[5\] are not columns"),
        (torch.eye(2), [0], [0], "1 references for 2 images"),
    ],
)
def test_choose_calibration_refuses_bad_input(logits, references, seen, message):
    with pytest.raises(ValueError, match=message):
        choose_calibration(logits, references, seen_columns=seen)


def test_gzsl_protocol_holds_out_validation_classes(protocol):
    view = protocol.training_view()
    assert view.val_unseen_classes == ["green square"]
    assert view.val_seen_classes == ["red square", "green cross", "blue cross"]
    drawn = GZSLProtocol(protocol.data, UNSEEN, ATTRIBUTES, seed=3)
    assert len(drawn.val_unseen_classes) == 1 and set(drawn.val_unseen_classes) <= set(drawn.seen_classes)
    assert GZSLProtocol(protocol.data, UNSEEN, ATTRIBUTES, seed=3).val_unseen_classes == drawn.val_unseen_classes
    assert GZSLProtocol.from_json(drawn.to_json(), protocol.data).val_unseen_classes == drawn.val_unseen_classes
    with pytest.raises(ValueError, match="not seen classes"):
        GZSLProtocol(protocol.data, UNSEEN, ATTRIBUTES, val_unseen_classes=["red cross"])


# ---------------------------------------------------------------- the model
def test_scores_are_gamma_cosine_of_the_concatenations(tiny_base, images):
    model = build(tiny_base, gamma=12.0)
    inputs = batch(model, images)
    with torch.no_grad():
        for parameter in (model.image_projection.weight, model.label_projection.weight):
            parameter.normal_()
        out = model(**inputs)
        # the CNN sees the images at twice the CLIP size by default
        cnn_input = F.interpolate(inputs["pixel_values"], size=(64, 64), mode="bilinear", align_corners=False)
        attributes = model.attribute_head(model.cnn(pixel_values=cnn_input).pooler_output.flatten(1))
        psi = torch.cat([attributes, out.image_embeds @ model.image_projection.weight.t()], dim=-1)
        phi = torch.cat([torch.tensor(ATTRIBUTES.matrix), out.text_embeds @ model.label_projection.weight.t()], dim=-1)
    assert out.semantic_image_embeds.shape == (3, 5 + 32) and out.predicted_attributes.shape == (3, 5)
    torch.testing.assert_close(out.semantic_image_embeds, psi)
    by_hand = 12.0 * (psi @ phi.t()) / (psi.norm(dim=-1)[:, None] * phi.norm(dim=-1)[None, :])
    torch.testing.assert_close(out.logits_per_image, by_hand)


def test_calibration_lowers_seen_classes_only(tiny_base, images):
    model = build(tiny_base)
    inputs = batch(model, images)
    with torch.no_grad():
        plain = model(**inputs).logits_per_image
        model.config.calibration = 2.5
        calibrated = model(**inputs).logits_per_image
    seen = torch.tensor([c not in UNSEEN for c in CLASSES])
    torch.testing.assert_close(calibrated[:, seen], plain[:, seen] - 2.5)
    torch.testing.assert_close(calibrated[:, ~seen], plain[:, ~seen])


def test_labels_need_attributes(tiny_base, images):
    model = build(tiny_base)
    with pytest.raises(ValueError, match=r"\['cat'\].*set_class_attributes"):
        model(**batch(model, images, ["red square", "cat"]))
    model.set_class_attributes(["cat"], [[0.0, 0.0, 0.0, 1.0, 1.0]])
    with torch.no_grad():
        logits = model(**batch(model, images, ["red square", "cat"])).logits_per_image
    assert logits.shape == (3, 2) and model.config.class_names[-1] == "cat"
    with pytest.raises(ValueError, match="5 values"):
        model.set_class_attributes(["dog"], [[1.0, 0.0]])
    with pytest.raises(ValueError, match="pixel_values"):
        text = model.tokenizer(CLASSES, padding=True, return_tensors="pt")
        model(**text, image_embeds=F.normalize(torch.randn(2, 32), dim=-1))


# ---------------------------------------------------------------- fitting
FAST = FitSettings(epochs=12, batch_size=16, learning_rate=3e-3, logging_steps=1, seed=0)


def test_fit_learns_attributes_and_calibrates_on_validation_classes(tiny_base, protocol):
    model = hf_zsl.build(
        "cfzsl", tiny_base, class_names=protocol.train_class_names, pk_classes=4, pk_images=4, cnn_image_size=0
    )
    info = cfzsl.fit(model, protocol.training_view(), FAST)
    assert info["last_loss"] < 0.5 * info["first_loss"]
    assert info["val_unseen_classes"] == ["green square"]
    assert model.config.calibration == info["calibration"]
    assert model.config.calibration_validation["harmonic"] == info["val_harmonic"] >= info["val_harmonic_uncalibrated"]
    assert model.config.seen_class_names == protocol.seen_classes
    assert model.config.attribute_names == ATTRIBUTES.attribute_names
    # the CNN branch learned the attributes, also on images of classes it never saw
    test = protocol.data["test"]
    images, labels = list(test["image"]), list(test["label"])
    with torch.no_grad():
        inputs = {name: tensor.to(model.device) for name, tensor in batch(model, images).items()}
        predicted = model(**inputs).predicted_attributes.cpu()
    truth = torch.tensor(ATTRIBUTES.rows([CLASSES[i] for i in labels]))
    colour = (predicted[:, :3].argmax(-1) == truth[:, :3].argmax(-1)).float()
    unseen = torch.tensor([CLASSES[i] in UNSEEN for i in labels])
    assert colour[unseen].mean() > 0.9 and colour[~unseen].mean() > 0.9
    correlation = np.corrcoef(predicted.flatten().numpy(), truth.flatten().numpy())[0, 1]
    assert correlation > 0.5
    record = evaluate_protocol(model, protocol)  # GZSL over all classes: pixels + cached CLIP features
    assert record["zsl_unseen"] > 0.9 and record["harmonic"] > 0.4  # chance: 1/2 and 1/6


def test_without_validation_images_calibration_scores_training_images_it_kept_out(tiny_base, protocol, monkeypatch):
    """An xlsa17-like protocol (no validation split): the seen side is a held-out share of the training images."""
    no_val = GZSLProtocol(datasets.DatasetDict(train=protocol.data["train"], test=protocol.data["test"]), UNSEEN,
                          ATTRIBUTES, val_unseen_classes=["green square"])
    trained_on = []
    train_on_classes = cfzsl.train_on_classes

    def spy(model, images, features, classes, settings):
        trained_on.append((len(images), list(classes)))
        return train_on_classes(model, images, features, classes, settings)

    monkeypatch.setattr(cfzsl, "train_on_classes", spy)
    model = hf_zsl.build("cfzsl", tiny_base, class_names=no_val.train_class_names, pk_classes=4, pk_images=4, cnn_image_size=0)
    info = cfzsl.fit(model, no_val.training_view(), dataclasses.replace(FAST, epochs=2))
    remaining = [c for c in no_val.seen_classes if c != "green square"]
    per_class = 12  # split(12, 0): training images per class
    kept_out = len(remaining) * round(cfzsl.SEEN_HOLD_OUT_FRACTION * per_class)
    assert info["val_seen_source"] == "held-out training images" == model.config.calibration_validation["seen_source"]
    assert trained_on[0] == (len(no_val.train) - kept_out, remaining)  # the calibration run never saw them
    assert trained_on[1] == (len(no_val.train), no_val.seen_classes)  # the final run sees every image
    labels = torch.tensor(no_val.train["label"])
    seen_ids = [no_val.train_class_names.index(c) for c in remaining]
    rows = cfzsl.held_out_seen_rows(labels, seen_ids, 0.2, seed=5)
    assert len(rows) == kept_out and rows.tolist() == sorted(set(rows.tolist()))
    assert torch.bincount(labels[rows]).tolist()[min(seen_ids):] == [round(0.2 * per_class) if i in seen_ids else 0
                                                                      for i in range(min(seen_ids), max(seen_ids) + 1)]
    np.testing.assert_array_equal(rows, cfzsl.held_out_seen_rows(labels, seen_ids, 0.2, seed=5))  # seeded


def test_bad_attribute_input_changes_nothing(tiny_base):
    model = hf_zsl.build("cfzsl", tiny_base, class_names=CLASSES)  # no attribute space yet
    width = model.num_attributes
    with pytest.raises(ValueError, match="Every attribute row needs 2 values"):
        model.set_class_attributes(CLASSES, ATTRIBUTES.matrix, attribute_names=["x", "y"])
    assert model.config.attribute_names is None and model.num_attributes == width  # the failed call left no trace
    for matrix, names, message in [
        ([[float("nan")] * 5] * 4, CLASSES, "finite"),
        ([1.0, 0.0, 1.0, 0.0, 1.0], ["red square"], "2-D \\(classes, attributes\\)"),
        ([[1.0] * 5, [0.0] * 5], ["red square", "red square"], "more than once"),
    ]:
        with pytest.raises(ValueError, match=message):
            model.set_class_attributes(names, matrix)
    model.set_class_attributes(CLASSES, ATTRIBUTES.matrix, ATTRIBUTES.attribute_names)  # a correct retry works
    assert model.config.attribute_names == ATTRIBUTES.attribute_names


def test_fit_needs_class_attributes(tiny_base, protocol):
    model = hf_zsl.build("cfzsl", tiny_base, class_names=CLASSES)
    fewshot = FewShotProtocol(protocol.data, k=2)
    with pytest.raises(ValueError, match="class-attribute"):
        cfzsl.fit(model, fewshot.training_view(), FAST)
    without = GZSLProtocol(protocol.data, UNSEEN)
    with pytest.raises(ValueError, match="class-attribute"):
        cfzsl.fit(model, without.training_view(), FAST)
