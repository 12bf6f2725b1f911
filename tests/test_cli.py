"""The command line on the shapes world (with a random tiny CLIP: plumbing, not accuracy)."""

import json
import os

import pytest
from transformers import AutoModelForZeroShotImageClassification

from hf_zsl.cli import build_parser, main
from hf_zsl.constants import PROTOCOL_SHOTS, protocol_shots


def test_eval_base_clip_zero_shot(tiny_base, tmp_path, capsys):
    out = tmp_path / "b2n.json"
    assert main(["eval", "--model", tiny_base, "--protocol", "base2new", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["method"] == "zeroshot" and record["protocol"] == "base2new"
    assert record["protocol_details"]["colour_shape"]["k"] == 16  # base2new's default shots
    assert {"base", "new", "harmonic"} <= record.keys()
    assert all(0 <= record[k] <= 1 for k in ("base", "new", "harmonic"))
    assert "harmonic" in capsys.readouterr().out


def test_train_writes_model_results_and_card(tiny_base, tmp_path):
    folder = tmp_path / "run"
    assert main(["train", "--method", "zeroshot", "--protocol", "gzsl", "--model", tiny_base,
                 "--output-dir", str(folder)]) == 0
    record = json.loads((folder / "eval_results.json").read_text())
    assert {"seen", "unseen", "harmonic", "zsl_unseen", "train_seconds", "seed", "shots"} <= record.keys()
    card = (folder / "README.md").read_text()
    assert "model-index" in card and "gzsl" in card
    model = AutoModelForZeroShotImageClassification.from_pretrained(folder)
    assert model.config.method == "zeroshot"
    again = tmp_path / "again.json"
    assert main(["eval", "--model", str(folder), "--protocol", "gzsl", "--json", str(again)]) == 0
    assert json.loads(again.read_text())["harmonic"] == record["harmonic"]


def test_too_many_shots_is_a_clear_error(tiny_base, capsys):
    assert main(["eval", "--model", tiny_base, "--protocol", "fewshot", "--shots", "500"]) == 2
    assert "500 shots were asked" in capsys.readouterr().err


def test_demo_writes_table_json_and_chart(tiny_base, tmp_path, capsys):
    results, chart = tmp_path / "demo.json", tmp_path / "demo.png"
    assert main(["demo", "--model", tiny_base, "--json", str(results), "--chart", str(chart), "--methods", "zeroshot"]) == 0
    records = json.loads(results.read_text())
    assert [r["protocol"] for r in records] == ["fewshot", "base2new", "gzsl", "dg"]
    fewshot = records[0]
    assert fewshot["accuracy"] == pytest.approx(sum(t["accuracy"] for t in fewshot["tasks"].values()) / len(fewshot["tasks"]))
    assert os.path.getsize(chart) > 1000 and "chance" in capsys.readouterr().out


def test_shots_all_and_bad_shots(tiny_base, tmp_path, capsys):
    out = tmp_path / "gzsl.json"
    assert main(["eval", "--model", tiny_base, "--protocol", "gzsl", "--shots", "all", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["protocol_details"]["gzsl"]["k"] is None
    with pytest.raises(SystemExit):
        main(["eval", "--model", tiny_base, "--protocol", "gzsl", "--shots", "zero"])
    assert "positive number of images per class or 'all'" in capsys.readouterr().err


@pytest.mark.parametrize("method, protocol", [("cfzsl", "fewshot"), ("dfzsl", "dg")])
def test_method_on_a_protocol_it_cannot_train_on(tiny_base, tmp_path, capsys, method, protocol):
    assert main(["train", "--method", method, "--protocol", protocol, "--model", tiny_base, "--output-dir", str(tmp_path)]) == 2
    assert f"not '{protocol}'" in capsys.readouterr().err


def test_train_refuses_an_output_dir_that_holds_files_unless_overwrite(tiny_base, tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "model.safetensors").write_text("another method's weights")
    command = ["train", "--method", "zeroshot", "--protocol", "gzsl", "--model", tiny_base, "--output-dir", str(folder)]
    assert main(command) == 2
    assert "already holds files" in capsys.readouterr().err
    assert (folder / "model.safetensors").read_text() == "another method's weights"  # nothing was touched
    assert main(command + ["--overwrite"]) == 2  # a folder that holds no earlier hf_zsl run is never deleted
    assert "no earlier hf_zsl run" in capsys.readouterr().err
    (folder / "eval_results.json").write_text("{}")
    stale = folder / "stale.txt"
    stale.write_text("left by an earlier run")
    assert main(command + ["--overwrite"]) == 0
    assert not stale.exists()  # replaced whole: no file of the earlier run mixes with the new model
    assert AutoModelForZeroShotImageClassification.from_pretrained(folder).config.method == "zeroshot"


def test_train_refuses_an_output_dir_that_is_a_file(tiny_base, tmp_path, capsys):
    path = tmp_path / "results.txt"
    path.write_text("keep me")
    assert main(["train", "--method", "zeroshot", "--protocol", "gzsl", "--model", tiny_base, "--output-dir", str(path),
                 "--overwrite"]) == 2
    assert "is a file" in capsys.readouterr().err and path.read_text() == "keep me"


@pytest.mark.parametrize(
    "override, message",
    [("shots=0", "'shots' takes a positive number"), ("shots=two", "'shots' takes a positive number"),
     ("seed=-1", "'seed' takes a non-negative integer"), ("settings={epochs: ten}", "'epochs' takes int values"),
     ("overwrite='false'", "'overwrite' takes true or false")],
)
def test_recipe_refuses_bad_config_values_before_training(tmp_path, monkeypatch, override, message):
    import runpy
    import sys

    config = tmp_path / "config.yaml"
    config.write_text(f"method: linear_probe\nprotocol: fewshot\noutput_dir: {tmp_path / 'out'}\n")
    recipe = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes", "train.py")
    monkeypatch.setattr(sys, "argv", [recipe, "--config", str(config), "--set", override])
    with pytest.raises(SystemExit, match=message):
        runpy.run_path(recipe, run_name="__main__")
    assert not (tmp_path / "out").exists()


def test_overwrite_never_deletes_the_working_directory_the_base_or_the_dataset(tiny_base, tmp_path, monkeypatch, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_base, run / "clip")
    (run / "eval_results.json").write_text("{}")  # looks like an earlier run, but holds the base
    command = ["train", "--method", "zeroshot", "--protocol", "gzsl", "--output-dir", str(run), "--overwrite"]
    assert main(command + ["--model", str(run / "clip")]) == 2
    assert "which --overwrite would delete" in capsys.readouterr().err and (run / "clip" / "config.json").exists()
    monkeypatch.chdir(run)
    assert main(command[:-3] + ["--output-dir", ".", "--overwrite", "--model", tiny_base]) == 2
    assert "which --overwrite would delete" in capsys.readouterr().err and (run / "eval_results.json").exists()


def test_a_suite_run_writes_one_folder_per_task_and_eval_finds_them(tiny_base, tmp_path, capsys):
    import hf_zsl
    from hf_zsl.loading import read_run

    folder = tmp_path / "suite"
    assert main(["train", "--method", "zeroshot", "--protocol", "fewshot", "--shots", "2", "--model", tiny_base,
                 "--output-dir", str(folder)]) == 0
    record = json.loads((folder / "eval_results.json").read_text())
    tasks = list(record["tasks"])
    assert len(tasks) == 6 and sorted(p.name for p in folder.iterdir() if p.is_dir()) == sorted(tasks)
    assert read_run(str(folder))["tasks"] == tasks and read_run(str(folder / tasks[0]))["tasks"] == [tasks[0]]
    index = (folder / "README.md").read_text()
    assert all(f"[{task}]({task}/)" in index for task in tasks)
    capsys.readouterr()

    again = tmp_path / "again.json"
    assert main(["eval", "--model", str(folder), "--json", str(again)]) == 0  # protocol, shots, seed from run.json
    evaluated = json.loads(again.read_text())
    assert evaluated["protocol"] == "fewshot" and evaluated["shots"] == 0
    assert 0 <= evaluated["accuracy"] <= evaluated["acc5"] <= 1 and 0 <= evaluated["mean_per_class_recall"] <= 1
    assert {t: s["accuracy"] for t, s in evaluated["tasks"].items()} == {t: s["accuracy"] for t, s in record["tasks"].items()}

    assert main(["eval", "--model", str(folder / tasks[1]), "--json", str(again)]) == 0  # one task's folder: its task
    assert list(json.loads(again.read_text())["tasks"]) == [tasks[1]]

    with pytest.raises(ValueError, match=f"suite run with one model per task.*{tasks[0]}"):
        hf_zsl.load(str(folder))
    assert main(["predict", str(folder / "README.md"), "--model", str(folder), "--labels", "a", "b"]) == 2
    assert "suite run with one model per task" in capsys.readouterr().err


def test_eval_needs_a_protocol_unless_the_model_records_one(tiny_base, capsys):
    assert main(["eval", "--model", tiny_base]) == 2
    assert "pass --protocol" in capsys.readouterr().err


def test_eval_several_models_and_the_table(tiny_base, tmp_path, capsys):
    out = tmp_path / "records.json"
    assert main(["eval", "--model", tiny_base, "embedded", "--protocol", "base2new", "--json", str(out)]) == 0
    records = json.loads(out.read_text())
    assert [r["model"] for r in records] == [tiny_base, "embedded"]
    capsys.readouterr()
    assert main(["table", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| model | method | protocol") and "harmonic" in lines[0]
    assert len(lines) == 4 and f"{100 * records[1]['harmonic']:.1f}" in lines[3]
    assert main(["table", "--csv", str(out)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].startswith("model,method,protocol") and rows[2].startswith("embedded,zeroshot,base2new")
    (tmp_path / "bad.json").write_text('{"accuracy": 1}')
    assert main(["table", str(tmp_path / "bad.json")]) == 2
    assert "holds no result records" in capsys.readouterr().err


def test_eval_on_a_shapes_domain_records_it(tiny_base, tmp_path):
    out = tmp_path / "hue.json"
    assert main(["eval", "--model", tiny_base, "--protocol", "gzsl", "--dataset", "shapes:hue_shift", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["dataset"] == "shapes:hue_shift" and record["protocol"] == "gzsl"
    assert record["protocol_details"]["gzsl"]["k"] is None  # gzsl's default shots: every training image
    assert 0 <= record["harmonic"] <= 1



def test_a_run_on_a_shapes_domain_is_evaluated_there(tiny_base, tmp_path):
    run, out = tmp_path / "run", tmp_path / "again.json"
    assert main(["train", "--method", "zeroshot", "--protocol", "base2new", "--dataset", "shapes:warm_light",
                 "--model", tiny_base, "--output-dir", str(run)]) == 0
    assert json.loads((run / "run.json").read_text())["dataset"] == "shapes:warm_light"
    assert "shapes:warm_light" in (run / "README.md").read_text()
    assert main(["eval", "--model", str(run), "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["dataset"] == "shapes:warm_light" and record["harmonic"] == json.loads((run / "eval_results.json").read_text())["harmonic"]

@pytest.mark.parametrize(
    ("protocol", "dataset", "message"),
    [("gzsl", "shapes:sunset", "choose shapes or one of shapes:hue_shift, shapes:warm_light"),
     ("base2new", "shapes:", "choose shapes or one of shapes:hue_shift, shapes:warm_light"),
     ("fewshot", "shapes:hue_shift", "choose --protocol gzsl or base2new"),
     ("dg", "shapes:warm_light", "choose --protocol gzsl or base2new")],
)
def test_bad_shapes_domains_are_refused_with_the_choices(tiny_base, capsys, protocol, dataset, message):
    assert main(["eval", "--model", tiny_base, "--protocol", protocol, "--dataset", dataset]) == 2
    assert message in capsys.readouterr().err


def test_default_shots_follow_the_protocol(capsys):
    assert PROTOCOL_SHOTS == {"fewshot": 16, "base2new": 16, "gzsl": None, "dg": 16}
    for command in (["train", "--method", "coop", "--output-dir", "out"], ["eval", "--model", "embedded"]):
        for protocol, shots in PROTOCOL_SHOTS.items():
            args = build_parser().parse_args([*command, "--protocol", protocol])
            assert args.shots in (None, "from-run")  # "not given", distinct from --shots all
            assert protocol_shots(protocol, None if args.shots == "from-run" else args.shots) == shots
            assert protocol_shots(protocol, build_parser().parse_args([*command, "--protocol", protocol, "--shots", "all"]).shots) is None
            assert protocol_shots(protocol, build_parser().parse_args([*command, "--protocol", protocol, "--shots", "4"]).shots) == 4
    with pytest.raises(ValueError, match="choose one of fewshot, base2new, gzsl, dg"):
        protocol_shots("zsl", None)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "the protocol's: all for gzsl, as the GZSL papers; 16 per base class for base2new, as CoCoOp; 16 for fewshot and dg" in text


@pytest.mark.parametrize(("protocol", "shots", "expected"), [("gzsl", None, None), ("base2new", None, 16), ("gzsl", 4, 4), ("fewshot", "all", None)])
def test_recipe_shots_follow_the_protocol_when_absent(tmp_path, monkeypatch, protocol, shots, expected):
    import runpy
    import sys

    import hf_zsl.commands

    config = tmp_path / "config.yaml"
    config.write_text(f"method: zeroshot\nprotocol: {protocol}\noutput_dir: {tmp_path / 'out'}\n")
    recipe = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes", "train.py")
    overrides = [] if shots is None else ["--set", f"shots={shots}"]
    monkeypatch.setattr(sys, "argv", [recipe, "--config", str(config), *overrides])
    called = []
    monkeypatch.setattr(hf_zsl.commands, "train", lambda *arguments, **keywords: called.append(arguments))
    runpy.run_path(recipe, run_name="__main__")
    assert called[0][1:3] == (protocol, expected)
