"""Every trained method on a CUDA device: skipped where there is none (CI has none; run this module on a
GPU machine).

A fit moves its model to the training device first (:func:`hf_zsl.training.on_training_device`), so the
frozen image tower, the training and every selection step run there, and the fitted model scores there.
The same fitted model moved to the CPU must score the same, and a bf16-autocast fit (``accelerate launch``
with ``mixed_precision: bf16``) must train the same float32 tensors.
"""

import os
import sys

import pytest
import torch
from safetensors.torch import load_file
from test_cfzsl import build as build_cfzsl
from test_cfzsl import protocol  # noqa: F401  (the GZSL fixture with class attributes)
from test_dfzsl import tiny_gzsl, tiny_settings
from test_distributed import RECIPE, ROOT, recipe_config, run  # noqa: F401  (recipe_config: a fixture)
from test_linear_probe import few_shot_protocol
from transformers import pipeline

import hf_zsl
from hf_zsl.evaluation import class_logits
from hf_zsl.methods import cfzsl, dfzsl
from hf_zsl.methods.dfzsl.generator import GeneratorSettings, synthesise, train_generator
from hf_zsl.runs import fit_method
from hf_zsl.training import FitSettings, on_training_device

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

FEW_SHOT = {
    "linear_probe": {"epochs": 5},
    "coop": {"epochs": 3},
    "tip_adapter": None,
    "tip_adapter_f": {"epochs": 3},
    "rtos": {"epochs": 3},
    "ccli": {"epochs": 5},
}


def scores_on_the_cpu_match(model, dataset, class_names) -> None:
    """The fitted model's scores on its GPU equal those of the same model moved to the CPU."""
    on_gpu = class_logits(model, dataset, class_names)
    on_cpu = class_logits(model.to("cpu"), dataset, class_names)
    torch.testing.assert_close(on_gpu, on_cpu, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("method", sorted(FEW_SHOT))
def test_few_shot_fit_runs_and_serves_on_the_gpu(method, tiny_base, images):
    task = few_shot_protocol()
    model, info = fit_method(method, tiny_base, task, FEW_SHOT[method])
    assert model.device.type == "cuda" and info["train_seconds"] > 0
    names = task.train_class_names
    classifier = pipeline("zero-shot-image-classification", model=model, tokenizer=model.tokenizer,
                          image_processor=model.image_processor, device=model.device)
    assert {r["label"] for r in classifier(images[0], candidate_labels=names)} == set(names)
    scores_on_the_cpu_match(model, task.data["test"], names)


def test_cfzsl_fit_runs_on_the_gpu(tiny_base, protocol):  # noqa: F811
    model = build_cfzsl(tiny_base)
    info = cfzsl.fit(model, protocol.training_view(), FitSettings(epochs=3, learning_rate=1e-3, logging_steps=1))
    assert model.device.type == "cuda" and info["last_loss"] is not None
    scores_on_the_cpu_match(model, protocol.data["test"], protocol.class_names)


def test_dfzsl_trains_its_generator_on_the_gpu(tiny_base, monkeypatch):
    devices = []

    def spy(features, *args, **kwargs):
        devices.append(features.device.type)
        return train_generator(features, *args, **kwargs)

    monkeypatch.setattr(dfzsl.fitting, "train_generator", spy)
    task = tiny_gzsl()
    model = hf_zsl.build("dfzsl", tiny_base)
    dfzsl.fit(model, task.training_view(), tiny_settings())
    assert devices == ["cuda"] and model.device.type == "cuda"
    scores_on_the_cpu_match(model, task.data["test"], task.class_names)


def test_generator_noise_is_the_same_on_every_device():
    features = torch.nn.functional.normalize(torch.randn(40, 16, generator=torch.Generator().manual_seed(0)), dim=-1)
    labels, conditions = torch.arange(40) % 2, torch.nn.functional.normalize(torch.randn(2, 8), dim=-1)
    generator = train_generator(features, labels, conditions, GeneratorSettings(epochs=1, hidden_size=32))
    on_cpu, _ = synthesise(generator, conditions, 5, seed=3)
    on_gpu, _ = synthesise(generator.to("cuda"), conditions.cuda(), 5, seed=3)
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, atol=1e-4, rtol=1e-4)


def test_accelerate_bf16_config_trains_under_bf16_autocast(recipe_config):  # noqa: F811
    """``accelerate launch --config_file recipes/accelerate/gpu.yaml``: the fit's Accelerator runs bf16
    autocast on the GPU and the learned tensors stay float32, close to a float32 run's."""
    folder, config = recipe_config
    fp32 = run([sys.executable, RECIPE, "--config", str(config)], folder / "fp32", gpu=True)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
              os.path.join(ROOT, "recipes", "accelerate", "gpu.yaml"), RECIPE, "--config", str(config)]
    bf16 = run(launch, folder / "bf16", gpu=True)
    assert (fp32["mixed_precision"], bf16["mixed_precision"]) == ("no", "bf16")
    assert fp32["device"].startswith("cuda") and bf16["device"].startswith("cuda")
    reference, weights = load_file(folder / "fp32" / "model.safetensors"), load_file(folder / "bf16" / "model.safetensors")
    for name, tensor in weights.items():
        assert tensor.dtype == torch.float32 and torch.isfinite(tensor).all(), name
        assert (tensor - reference[name]).abs().max() < 0.05, name


def test_a_decorated_fit_finds_its_model_on_the_gpu(tiny_base):
    seen = []

    @on_training_device
    def fit(model):
        seen.append(next(model.parameters()).device.type)

    fit(hf_zsl.build("zeroshot", tiny_base))
    assert seen == ["cuda"]
