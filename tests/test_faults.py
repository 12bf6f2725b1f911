"""Faults a tired user or an attacker brings: every case ends in a clear error that names the fix, or in
the right answer, and nothing saved before is lost (issue 18).

Sections: images, labels, settings, dataset files, the feature cache, run output folders.
"""

import errno
import hashlib
import io
import multiprocessing
import os
import signal
import threading
import warnings

import datasets
import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import save_file
from transformers import pipeline

import hf_zsl
from hf_zsl import commands
from hf_zsl.cache import cache_root, save_verified
from hf_zsl.features import image_features
from hf_zsl.images import open_rgb, to_rgb
from hf_zsl.loaders import load_coop_split, load_xlsa17
from hf_zsl.methods.dfzsl import DFZSLSettings
from hf_zsl.protocols import FewShotProtocol
from hf_zsl.rundir import RunFolder
from hf_zsl.training import FitSettings, LabelledFeatures, settings_from_dict

from test_loaders import coop, coop_record, stored_paths, xlsa17, awa_images, cells  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model(tiny_base):
    return hf_zsl.build("zeroshot", tiny_base)


@pytest.fixture(scope="module")
def classifier(model):
    return pipeline("zero-shot-image-classification", model=model, tokenizer=model.tokenizer,
                    image_processor=model.image_processor)


# ------------------------------------------------------------------------------------------ images


def _palette(transparent: bool) -> Image.Image:
    image = Image.new("P", (2, 2), 1)
    image.putpalette([0, 0, 0, 200, 30, 30] + [0] * 762)
    if transparent:
        image.info["transparency"] = 1
    return image


def _high_depth(mode: str, value: int) -> Image.Image:
    layout = {"I;16": "<u2", "I;16B": ">u2", "I;16L": "<u2", "I": "=i4"}[mode]
    return Image.frombytes(mode, (2, 2), np.full((2, 2), value).astype(layout).tobytes())


def _with_trns(mode: str, colour) -> Image.Image:
    image = Image.new(mode, (2, 2), colour)
    image.info["transparency"] = colour
    return image


WHITE = (255, 255, 255)
CONVERSIONS = {  # mode → (image, its correct RGB colour)
    "1": (Image.new("1", (2, 2), 1), WHITE),
    "L": (Image.new("L", (2, 2), 128), (128, 128, 128)),
    "P": (_palette(False), (200, 30, 30)),
    "P-transparent": (_palette(True), WHITE),
    "PA-transparent": (Image.new("PA", (2, 2), (0, 0)), WHITE),
    "LA-half": (Image.new("LA", (2, 2), (0, 128)), (127, 127, 127)),
    "La-half": (Image.new("La", (2, 2), (0, 128)), (127, 127, 127)),
    "RGBA-transparent-black": (Image.new("RGBA", (2, 2), (0, 0, 0, 0)), WHITE),
    "RGBA-opaque": (Image.new("RGBA", (2, 2), (10, 20, 30, 255)), (10, 20, 30)),
    "RGBa": (Image.new("RGBa", (2, 2), (0, 0, 0, 0)), WHITE),
    "RGBX": (Image.new("RGBX", (2, 2), (10, 20, 30, 0)), (10, 20, 30)),
    "CMYK-red": (Image.new("CMYK", (2, 2), (0, 255, 255, 0)), (255, 0, 0)),
    "YCbCr-grey": (Image.new("YCbCr", (2, 2), (128, 128, 128)), (128, 128, 128)),
    "LAB-grey": (Image.new("LAB", (2, 2), (128, 128, 128)), (119, 119, 119)),
    "LAB-black": (Image.new("LAB", (2, 2), (0, 128, 128)), (0, 0, 0)),  # its 'A' band is not alpha
    "HSV-red": (Image.new("HSV", (2, 2), (0, 255, 255)), (255, 0, 0)),
    "I;16-half": (_high_depth("I;16", 32896), (128, 128, 128)),
    "I;16B-full": (_high_depth("I;16B", 65535), WHITE),
    "I;16L-dark": (_high_depth("I;16L", 257 * 10), (10, 10, 10)),
    "I-half": (_high_depth("I", 32896), (128, 128, 128)),
    "F-half": (Image.fromarray(np.full((2, 2), 0.5, np.float32)), (128, 128, 128)),
    "L-tRNS": (_with_trns("L", 40), WHITE),
    "RGB-tRNS": (_with_trns("RGB", (1, 2, 3)), WHITE),
}


@pytest.mark.parametrize("mode", CONVERSIONS)
def test_every_mode_converts_to_the_right_rgb(mode):
    image, colour = CONVERSIONS[mode]
    converted = to_rgb(image, "x.png")
    assert converted.mode == "RGB" and converted.size == image.size
    np.testing.assert_allclose(converted.getpixel((0, 0)), colour, atol=2)


@pytest.mark.parametrize(
    "image, message",
    [
        (Image.fromarray(np.full((2, 2), 2.0, np.float32)), "F image at x.png has values from 2 to 2, outside the 0-1"),
        (Image.fromarray(np.full((2, 2), np.nan, np.float32)), "F image at x.png has values"),
        (_high_depth("I", -5), "I image at x.png has values from -5"),
        (_high_depth("I", 70000), "outside the 0-65535"),
        (Image.new("RGB", (0, 3)), "image at x.png is empty \\(0x3 pixels\\)"),
    ],
    ids=["float-above-one", "float-nan", "int-negative", "int-above-16-bit", "empty"],
)
def test_images_that_cannot_be_converted_are_refused_with_their_name(image, message):
    with pytest.raises(ValueError, match=message):
        to_rgb(image, "x.png")


def test_a_mode_pil_cannot_convert_is_refused_with_its_name(monkeypatch):
    image = Image.new("CMYK", (2, 2))

    def unsupported(mode):
        raise ValueError(f"conversion from CMYK to {mode} not supported")

    monkeypatch.setattr(image, "convert", unsupported)
    with pytest.raises(ValueError, match="The CMYK image at x.png cannot be converted to RGB .*save it as RGB"):
        to_rgb(image, "x.png")


@pytest.mark.parametrize("thing", [np.zeros((4, 4, 3), np.uint8), "cat.png"], ids=["array", "string"])
def test_a_row_that_is_not_an_image_is_a_type_error(thing):
    with pytest.raises(TypeError, match="Expected an image at row 3, got"):
        to_rgb(thing, "row 3")


def _file_dataset(paths):
    return datasets.Dataset.from_dict({"image": [str(p) for p in paths]}, features=datasets.Features({"image": datasets.Image()}))


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content",
    [_png_bytes(Image.new("RGB", (32, 32)))[:60], b"this is not an image", b"", "bomb"],
    ids=["truncated", "not-an-image", "zero-bytes", "decompression-bomb"],
)
def test_unreadable_image_files_are_named_by_path(model, tmp_path, monkeypatch, content):
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    Image.new("RGB", (3, 3), (9, 9, 9)).save(good)
    if content == "bomb":
        Image.new("RGB", (32, 32)).save(bad)
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # 1024 pixels > 2 x 10: PIL refuses it as a bomb (9: fine)
    else:
        bad.write_bytes(content)
    with pytest.raises(ValueError, match=f"unreadable: row 1 \\({bad}.*Remove or replace"):
        image_features(model, _file_dataset([good, bad]), progress=False)


def test_a_16_bit_png_in_a_dataset_gives_the_features_of_its_8_bit_twin(model, tmp_path):
    grey = np.arange(32 * 32).reshape(32, 32) % 256
    Image.fromarray((grey * 257).astype(np.uint16)).save(tmp_path / "deep.png")
    Image.fromarray(grey.astype(np.uint8)).save(tmp_path / "flat.png")
    assert Image.open(tmp_path / "deep.png").mode == "I;16"
    features = image_features(model, _file_dataset([tmp_path / "deep.png", tmp_path / "flat.png"]), progress=False)
    torch.testing.assert_close(features[0], features[1])


def test_the_pipeline_reads_16_bit_and_transparent_images_correctly(classifier, tmp_path):
    labels = ["red circle", "blue square"]
    deep = _high_depth("I;16", 257 * 90)
    path = tmp_path / "deep.png"
    deep.save(path)
    expected = classifier(Image.new("RGB", (2, 2), (90, 90, 90)), candidate_labels=labels)
    for source in (deep, str(path)):
        assert classifier(source, candidate_labels=labels) == expected
    clear = classifier(Image.new("RGBA", (2, 2), (0, 0, 0, 0)), candidate_labels=labels)
    assert clear == classifier(Image.new("RGB", (2, 2), WHITE), candidate_labels=labels)


def test_opening_a_folder_as_an_image_names_it(tmp_path):
    with pytest.raises(ValueError, match=f"Cannot read the image {tmp_path}"):
        open_rgb(str(tmp_path))


# ------------------------------------------------------------------------------------------ labels


@pytest.mark.parametrize(
    "labels, error, message",
    [
        ("cat", TypeError, "must be a list of strings, got str"),
        (None, TypeError, "got NoneType"),
        ({"cat", "dog"}, TypeError, "got set"),
        (["cat", 3], TypeError, "position 1 is a int"),
        ([b"cat"], TypeError, "position 0 is a bytes"),
        (["cat", None], TypeError, "position 1 is a NoneType"),
        (["A  Cat", "a cat"], ValueError, "positions 0 and 1 are the same text"),
        (["cat", "\t\n"], ValueError, "position 1 is empty"),
    ],
    ids=["single-string", "none", "set", "int", "bytes", "none-label", "case-and-space-duplicate", "whitespace"],
)
def test_bad_candidate_labels_are_refused_before_tokenizing(classifier, labels, error, message):
    with pytest.raises(error, match=message):
        classifier(Image.new("RGB", (8, 8)), candidate_labels=labels)


@pytest.mark.parametrize("split", ["train", "test"])
def test_rows_without_a_label_are_refused(split):
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})
    rows = {"image": [Image.new("RGB", (4, 4))] * 4, "label": [0, 1, 0, 1]}
    data = {name: datasets.Dataset.from_dict(rows, features=features) for name in ("train", "test")}
    data[split] = datasets.Dataset.from_dict({**rows, "label": [0, 1, -1, 1]}, features=features)
    with pytest.raises(ValueError, match=f"1 rows of the '{split}' split have labels outside 0..1 .*row 2: -1.*filter"):
        FewShotProtocol(data, k=1)


# ---------------------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "defaults, values, field",
    [
        (FitSettings(), {"learning_rate": float("inf")}, "learning_rate"),
        (FitSettings(), {"learning_rate": float("nan")}, "learning_rate"),
        (FitSettings(), {"weight_decay": float("-inf")}, "weight_decay"),
        (FitSettings(), yaml.safe_load("learning_rate: .inf"), "learning_rate"),
        (DFZSLSettings(), {"generator": {"learning_rate": float("nan")}}, "learning_rate"),
        (DFZSLSettings(), {"held_out_fraction": float("nan")}, "held_out_fraction"),
    ],
    ids=["lr-inf", "lr-nan", "wd-minus-inf", "yaml-inf", "nested-nan", "dfzsl-fraction-nan"],
)
def test_non_finite_settings_are_refused_naming_the_field(defaults, values, field):
    with pytest.raises(ValueError, match=f"Settings field '{field}' must be a finite number"):
        settings_from_dict(defaults, values)


def test_non_finite_settings_built_directly_are_refused():
    with pytest.raises(ValueError, match="'FitSettings.learning_rate' must be a finite number"):
        FitSettings(learning_rate=float("nan"))


# ----------------------------------------------------------------------------------- dataset files


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "../../etc/passwd", "beagle/../../../etc/passwd", "C:\\Windows\\win.ini",
     "\\\\server\\share\\x.png", "~/.ssh/id_rsa", "beagle\x00.png", "..\\..\\secret.png"],
    ids=["absolute", "climbing", "climbing-inside", "windows-drive", "unc-share", "home", "nul-byte", "backslash-climb"],
)
def test_coop_split_paths_cannot_leave_the_image_folder(coop, path):
    write, root = coop
    record = coop_record()
    record["val"][0] = [path, 1, record["val"][0][2]]
    with pytest.raises(ValueError, match="entry 0 of split 'val'.*reaches outside the dataset's folder"):
        load_coop_split(write(record), root)


@pytest.mark.parametrize("label", [True, -1], ids=["bool", "negative"])
def test_coop_split_labels_that_are_not_class_ids(coop, label):
    write, root = coop
    record = coop_record()
    record["val"][0][1] = label
    with pytest.raises(ValueError, match="expected \\[relative_image_path|must be 0\\.\\."):
        load_coop_split(write(record), root)


def test_xlsa17_stored_paths_cannot_climb_out_of_the_image_root(xlsa17, awa_images):
    stored = stored_paths()
    stored[3] = "/BS/data/JPEGImages/../../../../etc/passwd"
    with pytest.raises(ValueError, match="row 4 of res101.mat's image_files.*reaches outside"):
        load_xlsa17(xlsa17(res={"image_files": cells(stored)}), image_root=awa_images)


# ------------------------------------------------------------------------------------ feature cache


def _dataset(seed: int, rows: int = 3):
    rng = np.random.RandomState(seed)
    images = [Image.fromarray((rng.rand(32, 32, 3) * 255).astype(np.uint8)) for _ in range(rows)]
    return datasets.Dataset.from_dict({"image": images}, features=datasets.Features({"image": datasets.Image()}))


def _entries() -> set[str]:
    folder = cache_root("features")
    return set(os.listdir(folder)) if os.path.isdir(folder) else set()


def _entry(before: set) -> str:
    (path,) = _entries() - before
    return cache_root("features", path)


def _flip_last_byte(path, features):
    data = bytearray(open(path, "rb").read())
    data[-1] ^= 0xFF
    open(path, "wb").write(bytes(data))


def _truncate(path, features):
    open(path, "r+b").truncate(os.path.getsize(path) // 2)


def _garbage(path, features):
    open(path, "wb").write(b"\x00" * 100)


def _no_digest(path, features):
    save_file({"features": features}, path)


def _wrong_shape(path, features):
    save_verified({"features": features[:-1]}, path)


def _nan(path, features):
    save_verified({"features": torch.full_like(features, float("nan"))}, path)


def _folder(path, features):
    os.remove(path)
    os.makedirs(os.path.join(path, "inside"))


@pytest.mark.parametrize(
    "damage, problem",
    [(_flip_last_byte, "do not match the digest"), (_truncate, "cannot be read"), (_garbage, "cannot be read"),
     (_no_digest, "has no digest"), (_wrong_shape, "shape \\(2, "), (_nan, "NaN or infinite"), (_folder, "cannot be read")],
    ids=["bit-flip", "truncated", "garbage", "no-digest", "wrong-shape", "nan", "folder"],
)
def test_a_damaged_cache_entry_is_rebuilt_with_a_warning(model, damage, problem):
    data = _dataset(sum(map(ord, damage.__name__)))
    before = _entries()
    first = image_features(model, data, progress=False)
    path = _entry(before)
    damage(path, first)
    with pytest.warns(UserWarning, match=f"cache entry .* is damaged \\(.*{problem}"):
        again = image_features(model, data, progress=False)
    torch.testing.assert_close(again, first)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # repaired: read back silently
        torch.testing.assert_close(image_features(model, data, progress=False), first)


def test_non_finite_encoder_output_is_an_error_and_is_not_cached(model, monkeypatch):
    data = _dataset(2024)
    before = _entries()
    monkeypatch.setattr(type(model), "encode_images", lambda self, pixel_values, **image_inputs: torch.full((len(pixel_values), 8), float("nan")))
    with pytest.raises(ValueError, match="image encoder gave 24 NaN or infinite feature values for 3 images"):
        image_features(model, data, progress=False)
    assert _entries() == before


def test_a_full_cache_disk_only_warns(model, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("hf_zsl.cache.save_file", full)
    with pytest.warns(UserWarning, match="Could not cache image features .*No space left"):
        features = image_features(model, _dataset(77), progress=False)
    assert features.shape[0] == 3


@pytest.mark.parametrize(
    "features, labels, message",
    [(torch.full((2, 4), float("inf")), torch.zeros(2, dtype=torch.long), "8 image feature values are NaN or infinite"),
     (torch.zeros(3, 4), torch.zeros(2, dtype=torch.long), "shape \\(num_images, dim\\).*got \\(3, 4\\) and \\(2,\\)")],
    ids=["infinite", "rows-differ"],
)
def test_training_features_must_be_finite_and_match_their_labels(features, labels, message):
    with pytest.raises(ValueError, match=message):
        LabelledFeatures(features, labels, ["a"])


# ----------------------------------------------------------------------------------- output folders

RECORD = {"method": "zeroshot", "protocol": "gzsl", "dataset": "shapes", "shots": 0, "seed": 1, "train_seconds": 0.0,
          "harmonic": 0.5}


def snapshot(folder) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``folder``."""
    found = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            found[os.path.relpath(path, folder)] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return found


def leftovers(folder) -> list[str]:
    """Siblings of ``folder`` that a run writes beside it (lock, staging, replaced run)."""
    parent, name = os.path.split(str(folder))
    return sorted(entry for entry in os.listdir(parent) if entry.startswith(f".{name}."))


@pytest.fixture
def fake_training(model, monkeypatch):
    """``commands.train`` without training: one task whose model is the tiny zero-shot one; returns the calls."""
    calls = []
    monkeypatch.setattr(commands, "make_protocols", lambda *args: {"gzsl": None})

    def run_method(*args):
        calls.append(args)
        return dict(RECORD), {"gzsl": model}

    monkeypatch.setattr(commands, "run_method", run_method)
    return calls


def train(folder, overwrite=False, **kwargs):
    return commands.train("zeroshot", "gzsl", None, 1, "embedded", "shapes", str(folder), overwrite=overwrite, **kwargs)


@pytest.fixture
def old_run(tmp_path, fake_training):
    """An earlier run at ``tmp_path/run`` and the hashes of its files."""
    folder = tmp_path / "run"
    train(folder)
    return folder, snapshot(folder)


def _breaking_save(model, monkeypatch, error):
    """Make the model's save write its config, then raise ``error`` (a run dying mid-save)."""
    original = type(model).save_pretrained

    def save(self, folder, **kwargs):
        original(self, folder, **kwargs)
        raise error

    monkeypatch.setattr(type(model), "save_pretrained", save)


@pytest.mark.parametrize(
    "error, expected, message",
    [
        (RuntimeError("killed"), RuntimeError, "killed"),
        (KeyboardInterrupt(), KeyboardInterrupt, None),
        (OSError(errno.ENOSPC, "No space left on device"), OSError, "disk holding .*run is full; free some space"),
        (SafetensorError("Error while serializing: IoError(No space left on device)"), OSError, "run is full"),
        (PermissionError(errno.EACCES, "Permission denied"), OSError, "run is not writable .*fix its permissions"),
        (OSError(errno.EIO, "Input/output error"), OSError, "Writing the run into .*run failed.*nothing was replaced"),
    ],
    ids=["crash", "ctrl-c", "disk-full", "safetensors-disk-full", "permission", "io-error"],
)
def test_a_run_failing_while_saving_leaves_the_old_run_intact(old_run, model, monkeypatch, error, expected, message):
    folder, before = old_run
    _breaking_save(model, monkeypatch, error)
    with pytest.raises(expected, match=message):
        train(folder, overwrite=True)
    assert snapshot(folder) == before and leftovers(folder) == []


def test_a_failing_extra_file_leaves_the_old_run_intact(old_run):
    folder, before = old_run

    def write_extra(record, staging):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="is full"):
        train(folder, overwrite=True, write_extra=write_extra)
    assert snapshot(folder) == before and leftovers(folder) == []


def test_extra_files_are_published_with_the_run(old_run):
    folder, before = old_run
    train(folder, overwrite=True, write_extra=lambda record, staging: open(os.path.join(staging, "run.json"), "w").write("{}"))
    assert (folder / "run.json").read_text() == "{}" and set(snapshot(folder)) == {*before, "run.json"}


def test_a_failed_training_creates_nothing(tmp_path, monkeypatch, fake_training):
    monkeypatch.setattr(commands, "run_method", lambda *args: (_ for _ in ()).throw(ValueError("diverged")))
    with pytest.raises(ValueError, match="diverged"):
        train(tmp_path / "run")
    assert os.listdir(tmp_path) == []


def test_overwrite_replaces_the_whole_run_only_once_it_is_complete(old_run):
    folder, before = old_run
    (folder / "stale.txt").write_text("from the earlier run")
    train(folder, overwrite=True)
    assert set(snapshot(folder)) == set(before) and leftovers(folder) == []


def test_a_missing_parent_folder_is_created(tmp_path, fake_training):
    train(tmp_path / "a" / "b" / "run")
    assert (tmp_path / "a" / "b" / "run" / "eval_results.json").exists()


@pytest.mark.parametrize(
    "target, error, message",
    [
        ("os.mkdir", PermissionError(errno.EACCES, "Permission denied"), "is not writable"),
        ("os.makedirs", OSError(errno.EROFS, "Read-only file system"), "is not writable \\(Read-only file system\\)"),
        ("os.open", PermissionError(errno.EACCES, "Permission denied"), "is not writable"),
    ],
    ids=["staging-refused", "parent-read-only", "lock-refused"],
)
def test_an_unwritable_parent_is_refused_before_training(old_run, fake_training, monkeypatch, target, error, message):
    folder, before = old_run
    fake_training.clear()

    def refuse(*args, **kwargs):
        raise error

    monkeypatch.setattr(target, refuse)
    with pytest.raises(OSError, match=message):
        train(folder, overwrite=True)
    monkeypatch.undo()
    assert fake_training == [] and snapshot(folder) == before


def test_too_little_free_space_is_refused_before_training(old_run, fake_training, monkeypatch):
    folder, before = old_run
    fake_training.clear()
    monkeypatch.setattr("shutil.disk_usage", lambda path: type("Usage", (), {"free": 2**20})())
    with pytest.raises(OSError, match="has 1 MiB free, less than the 64 MiB this run may write"):
        train(folder, overwrite=True)
    assert fake_training == [] and snapshot(folder) == before and leftovers(folder) == []


def test_a_second_run_into_a_locked_folder_names_the_holder(old_run):
    folder, before = old_run
    with RunFolder(str(folder)):
        with pytest.raises(ValueError, match=f"being written by another run \\(pid {os.getpid()} .*lock .*\\.run\\.lock"):
            train(folder, overwrite=True)
    assert snapshot(folder) == before


def test_the_command_line_reports_a_locked_folder(old_run, capsys):
    from hf_zsl.cli import main

    folder, before = old_run
    with RunFolder(str(folder)):
        assert main(["train", "--method", "zeroshot", "--protocol", "gzsl", "--output-dir", str(folder), "--overwrite"]) == 2
    assert "is being written by another run" in capsys.readouterr().err and snapshot(folder) == before


def _hold_lock(folder, locked, release):
    with RunFolder(folder):
        locked.set()
        release.wait(30)


def test_a_run_in_another_process_holds_the_lock(old_run):
    folder, before = old_run
    context = multiprocessing.get_context("fork")
    locked, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(str(folder), locked, release))
    holder.start()
    try:
        assert locked.wait(30)
        with pytest.raises(ValueError, match=f"another run \\(pid {holder.pid} "):
            train(folder, overwrite=True)
    finally:
        release.set()
        holder.join(30)
    train(folder, overwrite=True)  # released once the holder is done
    assert snapshot(folder).keys() == before.keys() and leftovers(folder) == []


def test_two_runs_racing_for_one_folder_one_wins(tmp_path, fake_training, model, monkeypatch):
    folder, start, outcomes = tmp_path / "run", threading.Barrier(2), []
    original = type(model).save_pretrained
    slow = threading.Event()

    def save(self, path, **kwargs):  # hold the lock until the other run has tried
        slow.wait(10)
        original(self, path, **kwargs)

    monkeypatch.setattr(type(model), "save_pretrained", save)

    def run():
        start.wait()
        try:
            train(folder)
            outcomes.append("ok")
        except ValueError as error:
            outcomes.append(str(error))
            slow.set()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes, key=len)[0] == "ok" and "being written by another run" in sorted(outcomes, key=len)[1]
    assert (folder / "eval_results.json").exists() and leftovers(folder) == []


def test_a_lock_file_left_by_a_dead_run_does_not_block(old_run):
    folder, before = old_run
    (folder.parent / ".run.lock").write_text("pid 999999 on gone since yesterday")
    train(folder, overwrite=True)
    assert leftovers(folder) == []


def _die_mid_save(folder):
    from hf_zsl.modeling.modeling_base import HfZslPreTrainedModel

    def save(self, path, **kwargs):
        os.makedirs(path, exist_ok=True)
        open(os.path.join(path, "config.json"), "w").write("{half")
        os.kill(os.getpid(), signal.SIGKILL)

    HfZslPreTrainedModel.save_pretrained = save
    train(folder, overwrite=True)


def test_a_killed_run_leaves_the_old_run_and_its_debris_is_removed_next_time(old_run):
    folder, before = old_run
    child = multiprocessing.get_context("fork").Process(target=_die_mid_save, args=(str(folder),))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    assert snapshot(folder) == before and [e for e in leftovers(folder) if ".partial-" in e]
    with pytest.warns(UserWarning, match="Removing .*\\.run\\.partial-.*killed or failed"):
        train(folder, overwrite=True)
    assert leftovers(folder) == [] and snapshot(folder).keys() == before.keys()


def test_a_run_killed_between_its_two_renames_gets_the_old_run_back(old_run):
    folder, before = old_run
    os.rename(folder, folder.parent / ".run.replaced-1-dead")  # the old run was moved aside, the new one never arrived
    with pytest.warns(UserWarning, match="Restored .*run from a run killed while replacing it"):
        with pytest.raises(ValueError, match="already holds files"):  # restored, and not overwritten without --overwrite
            train(folder)
    assert snapshot(folder) == before and leftovers(folder) == []


def test_a_replaced_run_left_after_a_completed_swap_is_removed(old_run):
    folder, before = old_run
    (folder.parent / ".run.replaced-1-dead").mkdir()
    (folder.parent / ".run.replaced-1-dead" / "model.safetensors").write_text("old")
    with pytest.warns(UserWarning, match="Removing .*replaced-1-dead"):
        train(folder, overwrite=True)
    assert leftovers(folder) == []


def test_a_failed_swap_puts_the_old_run_back(old_run, monkeypatch):
    folder, before = old_run
    rename = os.rename

    def refuse_publishing(source, target):
        if ".partial-" in str(source):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        rename(source, target)

    monkeypatch.setattr(os, "rename", refuse_publishing)
    with pytest.raises(OSError, match="Writing the run into .*run failed.*cross-device"):
        train(folder, overwrite=True)
    monkeypatch.undo()
    assert snapshot(folder) == before and leftovers(folder) == []
