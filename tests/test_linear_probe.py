"""What makes the linear probe that method: learned class vectors, zero-shot fallback, validated λ."""

import datasets
import numpy as np
import torch
from test_features import image_dataset

import hf_zsl
from hf_zsl.methods import linear_probe
from hf_zsl.protocols import FewShotProtocol
from hf_zsl.training import FitSettings


def colour_data(seed: int) -> datasets.Dataset:
    """Flat-colour images: red / green / blue, with noise; labels 0 / 1 / 2."""
    rng = np.random.RandomState(seed)
    arrays, labels = [], []
    for label, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        for _ in range(12):
            arrays.append(np.clip(np.array(colour) + rng.randn(32, 32, 3) * 20, 0, 255).astype(np.uint8))
            labels.append(label)
    data = image_dataset(arrays)
    names = datasets.ClassLabel(names=["red circle", "green star", "blue square"])
    return data.remove_columns("label").add_column("label", labels).cast_column("label", names)


def few_shot_protocol(seed: int = 0, k: int = 8) -> FewShotProtocol:
    """A k-shot protocol over :func:`colour_data` (training, validation and test images drawn apart)."""
    data = datasets.DatasetDict({"train": colour_data(0), "validation": colour_data(1), "test": colour_data(2)})
    return FewShotProtocol(data, k=k, seed=seed, val_policy="fewshot_min(k,4)")


def test_untrained_labels_fall_back_to_zero_shot(tiny_base):
    probe = hf_zsl.build("linear_probe", tiny_base, class_names=["red circle"])
    zeroshot = hf_zsl.build("zeroshot", tiny_base)
    with torch.no_grad():
        probe.class_weights.normal_()
    text = probe.tokenizer(["red circle", "cat"], padding=True, return_tensors="pt")
    image = torch.nn.functional.normalize(torch.randn(1, 32), dim=-1)
    with torch.no_grad():
        ours = probe(**text, image_embeds=image).text_embeds
        reference = zeroshot(**text, image_embeds=image).text_embeds
    torch.testing.assert_close(ours[1], reference[1])
    torch.testing.assert_close(ours[0], torch.nn.functional.normalize(probe.class_weights[0], dim=-1))


def test_fit_learns_and_records_the_validated_choice(tiny_base):
    protocol = few_shot_protocol()
    model = hf_zsl.build("linear_probe", tiny_base, preset="embedded", class_names=protocol.train_class_names)
    info = linear_probe.fit(model, protocol.training_view(), FitSettings(epochs=40, batch_size=8, learning_rate=5e-2))
    assert info["regularization"] in linear_probe.REGULARISATION_GRID
    assert model.config.regularization == info["regularization"]
    assert info["val_accuracy"] > 0.9
    from hf_zsl.evaluation import evaluate_protocol

    assert evaluate_protocol(model, protocol)["accuracy"] > 0.9
