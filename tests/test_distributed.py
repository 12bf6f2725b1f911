"""Scale-out: the training recipe under 2 CPU processes trains to the same weights as 1 process."""

import json
import os
import subprocess
import sys

import datasets
import pytest
import torch
from safetensors.torch import load_file
from test_linear_probe import colour_data

from hf_zsl.training import FitSettings, cpu_only, training_arguments

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE = os.path.join(ROOT, "recipes", "train.py")


@pytest.fixture(scope="module")
def recipe_config(tiny_base, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    data = datasets.DatasetDict({"train": colour_data(0), "validation": colour_data(1), "test": colour_data(2)})
    data.save_to_disk(str(folder / "data"))
    config = folder / "config.yaml"
    config.write_text(
        f"method: linear_probe\nprotocol: fewshot\nshots: 8\nseed: 0\nmodel: {tiny_base}\npreset: embedded\n"
        f"dataset: {folder / 'data'}\noutput_dir: {folder / 'unused'}\n"
        "settings: {epochs: 3, batch_size: 8, learning_rate: 0.05}\n"
    )
    return folder, config


def run(command, output_dir, gpu: bool = False):
    """Run a recipe command into ``output_dir``; returns its ``run.json``. Without ``gpu`` every GPU is
    hidden, so two processes share the CPU (gloo) also where one GPU exists (it cannot hold two NCCL ranks)."""
    env = dict(os.environ, HF_ZSL_PROGRESS="0", OMP_NUM_THREADS="1")
    if not gpu:
        env["CUDA_VISIBLE_DEVICES"] = ""
    result = subprocess.run(command + ["--set", f"output_dir={output_dir}"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((output_dir / "run.json").read_text())


def test_two_processes_train_the_same_weights_as_one(recipe_config):
    folder, config = recipe_config
    record = run([sys.executable, RECIPE, "--config", str(config)], folder / "one")
    assert (record["world_size"], record["device"], record["mixed_precision"]) == (1, "cpu", "no")
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
              os.path.join(ROOT, "recipes", "accelerate", "cpu_2proc.yaml"), "--main_process_port", "29531",
              RECIPE, "--config", str(config)]
    assert run(launch, folder / "two")["world_size"] == 2  # really two processes, not one launched twice
    one = load_file(folder / "one" / "model.safetensors")
    two = load_file(folder / "two" / "model.safetensors")
    assert one.keys() == two.keys() and one
    for name in one:
        torch.testing.assert_close(one[name], two[name], atol=1e-4, rtol=0)
    assert json.loads((folder / "one" / "eval_results.json").read_text())["accuracy"] == \
        json.loads((folder / "two" / "eval_results.json").read_text())["accuracy"]


def test_unsynchronised_processes_are_caught():
    from hf_zsl.training import check_synchronised

    class TwoRanks:  # what accelerate's gather returns when ranks diverged
        num_processes, device = 2, torch.device("cpu")

        @staticmethod
        def gather(checksum):
            return torch.cat([checksum, checksum + 1])

    model = torch.nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match="not synchronised"):
        check_synchronised(model, TwoRanks())


def test_accelerate_use_cpu_keeps_training_on_the_cpu_where_a_gpu_exists(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)
    assert not cpu_only()
    monkeypatch.setenv("ACCELERATE_USE_CPU", "true")  # what `accelerate launch --cpu` sets
    assert cpu_only() and training_arguments(FitSettings()).use_cpu
