"""A fast command line and a cheap ``import hf_zsl`` that still registers the Auto classes."""

import argparse
import os
import subprocess
import sys

import pytest

from hf_zsl.cli import build_parser, main

HEAVY = ("torch", "transformers", "datasets", "numpy")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code: str) -> str:
    """Run ``code`` in a fresh interpreter from the repository root; its stdout."""
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {"hf-zsl": parser, **action.choices}


def test_help_imports_nothing_heavy():
    loaded = _python(
        "import sys, contextlib, io\n"
        "from hf_zsl.cli import main\n"
        "for command in ([], ['demo'], ['train'], ['eval'], ['predict'], ['table'], ['convert-open-clip']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        main([*command, '--help'])\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    assert loaded == "[]"


@pytest.mark.parametrize("command", list(_subparsers()))
def test_every_option_has_help_and_says_its_default(command):
    for action in _subparsers()[command]._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        assert action.help, f"{command} {action.dest} has no help"
        if action.option_strings and not action.required:
            assert "default" in action.help, f"{command} {action.option_strings[0]} does not say its default"


def test_demo_says_what_it_runs(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Runs zeroshot on every protocol of the shapes world (fewshot, base2new, gzsl, dg)" in text
    assert "--methods runs other methods instead: each trained method is trained and evaluated on the fewshot suite (4 shots, seed 1" in text


def test_the_embedded_name_is_the_models():
    from hf_zsl.constants import EMBEDDED_BASE
    from hf_zsl.modeling import modeling_base

    assert EMBEDDED_BASE == modeling_base.EMBEDDED_BASE


@pytest.mark.parametrize("first", ["hf_zsl", "transformers"])
def test_import_hf_zsl_registers_the_auto_classes_and_pipeline(first, tmp_path):
    """Whichever is imported first, hf_zsl models load through the Auto classes and the pipeline, and
    ``import hf_zsl`` alone loads no torch."""
    transformers = "from transformers import AutoConfig, AutoModelForZeroShotImageClassification, pipeline"
    order = ["import hf_zsl", transformers] if first == "hf_zsl" else [transformers, "import hf_zsl"]
    folder = str(tmp_path / "zeroshot")
    output = _python(
        f"import sys\n{order[0]}\nprint('torch' in sys.modules)\n{order[1]}\n"
        f"hf_zsl.build('zeroshot', 'embedded').save_pretrained({folder!r})\n"
        f"print(type(AutoConfig.from_pretrained({folder!r})).__name__)\n"
        f"print(type(AutoModelForZeroShotImageClassification.from_pretrained({folder!r})).__name__)\n"
        f"print(type(pipeline('zero-shot-image-classification', model={folder!r})).__module__)\n"
        f"import os; print(sorted(os.listdir({folder!r}))[:1])"
    )
    assert output.splitlines() == [
        str(first == "transformers"), "ZeroShotCLIPConfig", "ZeroShotCLIPModel", "hf_zsl.serving", "['README.md']"
    ]


def test_the_package_loads_its_names_and_submodules_on_first_use():
    assert _python(
        "import sys, hf_zsl\n"
        "print('torch' in sys.modules, callable(hf_zsl.build), hf_zsl.shapes.__name__, 'zeroshot' in hf_zsl.METHODS)\n"
        "try:\n    hf_zsl.no_such_name\nexcept AttributeError as error:\n    print(error)"
    ).splitlines() == ["False True hf_zsl.shapes True", "module 'hf_zsl' has no attribute 'no_such_name'"]


def test_logging_verbosity_and_progress_bars(capsys):
    from hf_zsl import logging

    logger = logging.get_logger("hf_zsl.some_module")
    assert logger.name == "hf_zsl.some_module" and logging.get_logger("other").name == "hf_zsl.other"
    before = logging.get_verbosity()
    try:
        logging.set_verbosity_info()
        logger.info("task hue_shift: evaluating")
        logging.set_verbosity_warning()
        logger.info("hidden")
        logging.disable_progress_bars()
        assert not logging.progress_bars_enabled()
    finally:
        logging.set_verbosity(before)
        logging.enable_progress_bars()
    assert capsys.readouterr().err == "task hue_shift: evaluating\n"


def test_the_cli_logs_stages_unless_quiet(tiny_base, capsys):
    assert main(["eval", "--model", tiny_base, "--protocol", "gzsl"]) == 0
    assert "task gzsl: evaluating" in capsys.readouterr().err
    assert main(["--quiet", "eval", "--model", tiny_base, "--protocol", "gzsl"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("verbosity", ["info", "debug"])
def test_trainer_loss_dicts_only_when_verbose(tiny_base, capsys, verbosity):
    import torch

    from hf_zsl import build, logging
    from hf_zsl.training import FitSettings, LabelledFeatures, train_on_features

    classes = ["red circle", "blue square"]
    model = build("linear_probe", tiny_base, class_names=classes)
    dim = model.encoder.embed_dim
    data = LabelledFeatures(torch.nn.functional.normalize(torch.randn(4, dim), dim=-1), torch.tensor([0, 1, 0, 1]), classes)
    before = logging.get_verbosity()
    logging.set_verbosity(logging.DEBUG if verbosity == "debug" else logging.INFO)
    try:
        train_on_features(model, data, FitSettings(epochs=2, batch_size=2, logging_steps=1))
    finally:
        logging.set_verbosity(before)
    captured = capsys.readouterr()
    assert ("'loss'" in captured.out + captured.err) == (verbosity == "debug")
