"""How the shared test matrix builds each registered method tiny.

Every method in ``hf_zsl.METHODS`` must have an entry here; ``test_matrix`` fails otherwise, so a
new method cannot skip the matrix. ``fit`` puts a model into a trained state (changing every learned
tensor) so save / load equality is tested on non-trivial weights.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from test_tip_adapter import fill_cache


@dataclass
class MethodCase:
    hyperparameters: dict = field(default_factory=dict)
    fit: Callable | None = None


def perturb_learned(model) -> None:
    """A stand-in for training: move every learned tensor to seeded random values."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if not name.startswith("encoder."):
                parameter.add_(torch.randn(parameter.shape, generator=generator))


TRAINED_CLASSES = ["red circle", "blue square"]  # a subset of the matrix's labels: the rest are new
# CFZSL scores every label through its class attributes: rows for all of the matrix's labels
# (conftest.LABELS: red circle, blue square, green star, cat), the trained classes as the seen ones.
CFZSL_ATTRIBUTES = {
    "class_names": ["red circle", "blue square", "green star", "cat"],
    "class_attributes": [[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0], [0.5, 0.0, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]],
    "attribute_names": ["red", "blue", "round", "angular"],
    "seen_class_names": TRAINED_CLASSES,
    "calibration": 0.5,
}

CASES: dict[str, MethodCase] = {
    "zeroshot": MethodCase(hyperparameters={"templates": ["a photo of a {}.", "art of the {}."]}),
    "linear_probe": MethodCase(hyperparameters={"class_names": TRAINED_CLASSES}, fit=perturb_learned),
    "ccli": MethodCase(hyperparameters={"class_names": TRAINED_CLASSES, "num_concepts": 4}, fit=perturb_learned),
    "tip_adapter": MethodCase(hyperparameters={"class_names": TRAINED_CLASSES}, fit=fill_cache),
    "tip_adapter_f": MethodCase(hyperparameters={"class_names": TRAINED_CLASSES}, fit=fill_cache),
    # the matrix checks the model contract: the short shapes anchor list (the paper one is in test_rtos.py)
    "rtos": MethodCase(hyperparameters={"class_names": TRAINED_CLASSES, "preset": "embedded"}, fit=perturb_learned),
    "cfzsl": MethodCase(hyperparameters=CFZSL_ATTRIBUTES, fit=perturb_learned),
    "dfzsl": MethodCase(hyperparameters={"class_names": TRAINED_CLASSES}, fit=perturb_learned),
    "coop": MethodCase(
        hyperparameters={"class_names": TRAINED_CLASSES, "class_specific_context": True, "n_ctx": 4}, fit=perturb_learned
    ),
}
