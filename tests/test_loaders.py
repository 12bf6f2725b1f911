"""Benchmark loaders on tiny files in the real formats: CoOp split JSON and xlsa17 .mat files."""

import json
import os

import datasets
import numpy as np
import pytest
import scipy.io
from PIL import Image

from hf_zsl.loaders import load_coop_split, load_xlsa17, readable_class_name
from hf_zsl.protocols import BaseToNewProtocol, FewShotProtocol, GZSLProtocol
from hf_zsl.runs import load_data, make_protocols

# CoOp ---------------------------------------------------------------------------------------------

PETS = ["abyssinian", "american_bulldog", "beagle", "birman"]
PER_SPLIT = {"train": 3, "val": 2, "test": 2}


def write_image(path, size=(6, 4)):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new("RGB", size, (200, 10, 10)).save(path)


def coop_record():
    """A split record over :data:`PETS`; entries list labels in a scrambled order, as real files do."""
    record = {}
    for split, n in PER_SPLIT.items():
        entries = [[f"{name}/{split}_{i}.png", label, name] for label, name in enumerate(PETS) for i in range(n)]
        record[split] = entries[::-1]
    return record


@pytest.fixture
def coop(tmp_path):
    """``pets/images/<class>/<split>_<i>.png`` and the writer of ``pets/split_zhou_Pets.json``."""
    folder = tmp_path / "pets"
    for entries in coop_record().values():
        for path, _, _ in entries:
            write_image(str(folder / "images" / path))

    def write(record=None):
        path = folder / "split_zhou_Pets.json"
        path.write_text(json.dumps(coop_record() if record is None else record))
        return str(path)

    return write, str(folder / "images")


def test_coop_split_columns_classes_and_labels(coop):
    write, root = coop
    data = load_coop_split(write(), root)
    assert list(data) == ["train", "validation", "test"]
    assert {s: len(d) for s, d in data.items()} == {"train": 12, "validation": 8, "test": 8}
    assert data["train"].features["label"].names == PETS
    first = data["test"][0]
    assert first["label"] == 3 and first["image"].size == (6, 4)
    paths = data["test"].cast_column("image", datasets.Image(decode=False))["image"]
    assert paths[0]["path"] == os.path.join(root, "birman/test_1.png")


def test_coop_class_names_are_verbatim_but_stripped(coop):
    write, root = coop
    record = coop_record()
    for entries in record.values():
        for entry in entries:
            entry[2] = f"  {entry[2]} "
    assert load_coop_split(write(record), root)["train"].features["label"].names == PETS


def test_coop_split_feeds_fewshot_and_base_to_new(coop):
    write, root = coop
    data = load_coop_split(write(), root)
    fewshot = FewShotProtocol(data, 2, seed=1)
    assert len(fewshot.train) == 8 and len(fewshot.val) == 8 and len(fewshot.test) == 8
    assert fewshot.to_dict()["split_sizes"] == {"train": 8, "validation": 8, "test": 8}
    b2n = BaseToNewProtocol(data, 2, seed=1)
    assert b2n.base_classes == ["abyssinian", "american_bulldog"]
    assert {name: len(split) for name, split in b2n.test_splits().items()} == {"base": 4, "new": 4}


def test_coop_base_to_new_cuts_by_label_id_as_cocoop(coop):
    """CoCoOp's subsample_classes takes the first half of the sorted label *ids*: names out of
    alphabetical order keep their label's side, so the published base / new classes come out."""
    write, root = coop
    renamed = {"abyssinian": "sphynx", "american_bulldog": "pug", "beagle": "bengal", "birman": "boxer"}
    record = coop_record()
    for entries in record.values():
        for entry in entries:
            entry[2] = renamed[entry[2]]
    b2n = BaseToNewProtocol(load_coop_split(write(record), root), 2, seed=1)
    assert b2n.base_classes == ["sphynx", "pug"] and b2n.new_classes == ["bengal", "boxer"]


def test_coop_image_root_is_found_next_to_the_split_file(coop):
    write, _ = coop
    path = write()
    assert len(load_coop_split(path)["train"]) == 12
    assert len(load_data(path)["test"]) == 8
    protocols = make_protocols("fewshot", dataset=path, shots=1, seed=0)
    assert list(protocols) == ["Pets"] and len(protocols["Pets"].train) == 4


def _set(record, split, position, value):
    record[split][position] = value
    return record


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: {k: v for k, v in r.items() if k != "val"}, "needs the keys"),
        (lambda r: [r["train"]], "needs the keys"),
        (lambda r: {**r, "test": []}, "'test' of .* is empty"),
        (lambda r: _set(r, "val", 0, ["x.png", 1]), "Entry 0 of split 'val'"),
        (lambda r: _set(r, "val", 0, ["x.png", "1", "beagle"]), "expected \\[relative_image_path"),
        (lambda r: _set(r, "test", 0, ["birman/test_1.png", 3, "sphynx"]), "Label 3 is named both"),
        (lambda r: {k: [[p, y, "beagle" if y == 3 else n] for p, y, n in v] for k, v in r.items()}, "several labels"),
        (lambda r: {k: [[p, 2 * y, n] for p, y, n in v] for k, v in r.items()}, "must be 0..3; missing \\[1, 3\\]"),
        (lambda r: _set(r, "val", 0, ["x.png", 1, "   "]), "empty image path or class name"),
        (lambda r: _set(r, "val", 0, ["", 1, "american_bulldog"]), "empty image path or class name"),
        (lambda r: {**r, "train": [e for e in r["train"] if e[1] != 2]}, "\\['beagle'\\] .* have no image in 'train'"),
        (lambda r: {**r, "test": r["test"] + [r["train"][0]]}, "1 images .* in both 'train' and 'test'"),
    ],
)
def test_coop_malformed_split_files_are_explained(coop, change, message):
    write, root = coop
    with pytest.raises(ValueError, match=message):
        load_coop_split(write(change(coop_record())), root)


def test_coop_missing_images_are_counted_and_listed(coop):
    write, root = coop
    os.remove(os.path.join(root, "beagle/train_0.png"))
    os.remove(os.path.join(root, "beagle/test_1.png"))
    with pytest.raises(ValueError, match="2 of 28 image files are missing: .*beagle/t.*image_root"):
        load_coop_split(write(), root)


def test_coop_unreadable_split_files_are_explained(coop, tmp_path):
    _, root = coop
    with pytest.raises(ValueError, match="does not exist: pass the path of a split_zhou"):
        load_coop_split(str(tmp_path / "split_zhou_Missing.json"), root)
    broken = tmp_path / "split_zhou_Broken.json"
    broken.write_text('{"train": [')
    with pytest.raises(ValueError, match="split_zhou_Broken.json is not valid JSON"):
        load_coop_split(str(broken), root)


def test_coop_image_root_not_found_is_explained(coop):
    write, root = coop
    os.rename(root, os.path.join(os.path.dirname(os.path.dirname(root)), "elsewhere"))
    with pytest.raises(ValueError, match="Cannot find the image .* or pass image_root"):
        load_coop_split(write())


# xlsa17 -------------------------------------------------------------------------------------------

AWA = ["antelope", "grizzly+bear", "killer+whale", "humpback+whale", "beaver"]
READABLE = ["antelope", "grizzly bear", "killer whale", "humpback whale", "beaver"]
STORED = "/BS/xian/work/data/Animals_with_Attributes2//JPEGImages/{0}/{0}_{1}.jpg"
# Rows of res101.mat: classes 0-2 are seen (0, 1 train; 2 val), 3-4 unseen.
LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 4, 4])
TRAIN, VAL, TEST_SEEN, TEST_UNSEEN = [0, 1, 2, 4, 5, 6], [8, 9, 10], [3, 7, 11], [12, 13, 14, 15]
ATTRIBUTES = 4


def cells(strings):
    """A MATLAB cell array of strings as loadmat returns it: `(n, 1)` object array of 1-element arrays."""
    out = np.empty((len(strings), 1), dtype=object)
    for i, string in enumerate(strings):
        out[i, 0] = np.array([string])
    return out


def loc(rows):
    """1-based `(M, 1)` uint16 indices, as in att_splits.mat."""
    return (np.asarray(rows) + 1).astype(np.uint16).reshape(-1, 1)


def stored_paths():
    counts = {}
    paths = []
    for label in LABELS:
        counts[label] = counts.get(label, 0) + 1
        paths.append(STORED.format(AWA[label], 10000 + counts[label]))
    return paths


@pytest.fixture(scope="module")
def awa_images(tmp_path_factory):
    """``Animals_with_Attributes2/JPEGImages/<class>/<class>_<n>.jpg`` for every row."""
    root = tmp_path_factory.mktemp("awa") / "Animals_with_Attributes2"
    for path in stored_paths():
        write_image(str(root / path.split("//")[1]))
    return str(root)


@pytest.fixture
def xlsa17(tmp_path):
    """Writer of ``AWA2/res101.mat`` + ``AWA2/att_splits.mat``; ``res`` / ``att`` entries override
    (``None`` deletes the key). Features: column ``i`` starts with ``i``; att[a, c] = 10 c + a."""

    def write(res=None, att=None):
        folder = tmp_path / "AWA2"
        folder.mkdir(exist_ok=True)
        features = np.zeros((2048, len(LABELS)))
        features[0] = np.arange(len(LABELS))
        base_res = {"features": features, "labels": (LABELS + 1.0).reshape(-1, 1), "image_files": cells(stored_paths())}
        base_att = {
            "att": 10.0 * np.arange(len(AWA))[None, :] + np.arange(ATTRIBUTES)[:, None],
            "allclasses_names": cells(AWA),
            "trainval_loc": loc(TRAIN + VAL),
            "train_loc": loc(TRAIN),
            "val_loc": loc(VAL),
            "test_seen_loc": loc(TEST_SEEN),
            "test_unseen_loc": loc(TEST_UNSEEN),
        }
        for name, base, changes in (("res101.mat", base_res, res), ("att_splits.mat", base_att, att)):
            merged = {k: v for k, v in {**base, **(changes or {})}.items() if v is not None}
            scipy.io.savemat(str(folder / name), merged)
        return str(folder)

    return write


def test_fixture_matches_the_real_loadmat_layout(xlsa17):
    att = scipy.io.loadmat(os.path.join(xlsa17(), "att_splits.mat"))
    assert att["allclasses_names"].shape == (5, 1) and att["allclasses_names"][1, 0].tolist() == ["grizzly+bear"]
    assert att["trainval_loc"].shape == (9, 1) and att["att"].shape == (ATTRIBUTES, 5)


@pytest.mark.parametrize(
    "stored, readable",
    [
        ("grizzly+bear", "grizzly bear"),
        ("001.Black_footed_Albatross", "Black footed Albatross"),
        (" 200.Common_Yellowthroat ", "Common Yellowthroat"),
        ("antelope", "antelope"),
        ("class_00001", "class 00001"),
    ],
)
def test_readable_class_name(stored, readable):
    assert readable_class_name(stored) == readable


def test_xlsa17_gzsl_protocol(xlsa17, awa_images):
    protocol = load_xlsa17(xlsa17(), image_root=awa_images)
    assert isinstance(protocol, GZSLProtocol)
    assert protocol.class_names == READABLE
    assert protocol.unseen_classes == ["humpback whale", "beaver"]
    assert protocol.seen_classes == READABLE[:3]
    assert list(protocol.data) == ["train", "test"] and protocol.val_policy == "none"
    assert protocol.data["train"]["label"] == LABELS[TRAIN + VAL].tolist()
    assert protocol.data["test"]["label"] == LABELS[TEST_SEEN + TEST_UNSEEN].tolist()
    assert "res101" not in protocol.data["train"].column_names
    assert protocol.data["test"][0]["image"].size == (6, 4)
    tests = protocol.test_splits()
    assert {name: len(split) for name, split in tests.items()} == {"seen": 3, "unseen": 4}
    assert protocol.to_dict()["split_sizes"] == {"train": 9, "test/seen": 3, "test/unseen": 4}
    assert protocol.attributes.attribute_names == ["a0", "a1", "a2", "a3"]
    np.testing.assert_array_equal(protocol.attributes.rows(["beaver"]), [[40, 41, 42, 43]])


def test_xlsa17_image_root_can_be_any_ancestor_folder(xlsa17, awa_images):
    protocol = load_xlsa17(xlsa17(), image_root=os.path.join(awa_images, "JPEGImages"))
    assert protocol.data["train"][0]["image"].size == (6, 4)


def test_xlsa17_features_only_and_raw_names(xlsa17):
    protocol = load_xlsa17(xlsa17(), include_resnet_features=True, raw_class_names=True)
    train = protocol.data["train"]
    assert train.column_names == ["label", "res101"]
    assert protocol.class_names == AWA and protocol.unseen_classes == ["humpback+whale", "beaver"]
    vectors = np.asarray(train.with_format("numpy")["res101"])
    assert vectors.shape == (9, 2048) and vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors[:, 0], TRAIN + VAL)


def test_xlsa17_shots_and_validation_split(xlsa17):
    folder = xlsa17()
    fewshot = load_xlsa17(folder, include_resnet_features=True, k=2, seed=3)
    assert len(fewshot.train_indices) == 6
    tuned = load_xlsa17(folder, include_resnet_features=True, val_policy="full_val")
    assert tuned.data["train"]["label"] == LABELS[TRAIN].tolist()
    assert tuned.val["label"] == LABELS[VAL].tolist()
    for protocol in (fewshot, tuned):  # val_loc's class is the held-out validation class, whatever the seed
        assert protocol.val_unseen_classes == ["killer whale"]
        assert protocol.val_seen_classes == ["antelope", "grizzly bear"]
    without_val_loc = load_xlsa17(xlsa17(att={"val_loc": None, "train_loc": None}), include_resnet_features=True, seed=3)
    assert len(without_val_loc.val_unseen_classes) == 1  # drawn by GZSLProtocol
    with pytest.raises(ValueError, match="validation classes have no images in train_loc"):
        load_xlsa17(folder, include_resnet_features=True, val_policy="full_val", k=2)


def test_make_protocols_reads_an_xlsa17_folder(xlsa17, awa_images, tmp_path):
    with pytest.raises(ValueError, match="has no att_splits.mat"):
        make_protocols("gzsl", dataset=str(tmp_path))  # before anything is loaded from it
    folder = xlsa17()
    with pytest.raises(ValueError, match="no images/ subfolder"):
        make_protocols("gzsl", dataset=folder)
    os.symlink(awa_images, os.path.join(folder, "images"))
    protocols = make_protocols("gzsl", dataset=folder, shots=None)
    assert list(protocols) == ["AWA2"] and len(protocols["AWA2"].train) == 9


@pytest.mark.parametrize(
    "res, att, message",
    [
        ({"image_files": None}, None, "lacks \\['image_files'\\]"),
        (None, {"test_unseen_loc": None}, "lacks \\['test_unseen_loc'\\]"),
        (None, {"test_seen_loc": loc([3, 16])}, "test_seen_loc has indices outside 1..16.*e.g. \\[17\\]"),
        ({"labels": np.full((16, 1), 6.0)}, None, "class ids \\[6\\] outside 1..5"),
        ({"labels": np.ones((15, 1))}, None, "res101.mat is inconsistent"),
        (None, {"att": np.zeros((ATTRIBUTES, 4))}, "expected \\(attributes, 5 classes\\)"),
        (None, {"trainval_loc": loc(TRAIN + VAL + [12])}, "images are in both the training and the test"),
        (None, {"test_seen_loc": loc(TEST_SEEN + [14])}, "\\['beaver'\\] of test_unseen_loc also have seen"),
        (None, {"allclasses_names": cells(["a+b", "a_b", "c", "d", "e"])}, "\\['a b'\\] repeat.*raw_class_names"),
        (None, {"allclasses_names": cells(["a", "b", "", "d", "e"])}, "allclasses_names has an empty entry at row 3"),
        (None, {"test_seen_loc": np.zeros((0, 1), dtype=np.uint16)}, "test_seen_loc is empty"),
        (None, {"trainval_loc": loc(TRAIN + VAL + TRAIN[:2])}, "trainval_loc lists 2 images more than once"),
        (None, {"test_unseen_loc": loc([0, 1, 2, 3]) - 1}, "1-based \\(MATLAB\\): 0 suggests 0-based indices"),
        (None, {"test_seen_loc": loc(TEST_SEEN) + 0.5}, "test_seen_loc must hold whole 1-based indices"),
        (None, {"att": np.zeros((5, ATTRIBUTES))}, "looks transposed"),
        (None, {"att": np.full((ATTRIBUTES, 5), np.nan)}, "NaN or infinite"),
    ],
)
def test_xlsa17_inconsistent_files_are_explained(xlsa17, res, att, message):
    with pytest.raises(ValueError, match=message):
        load_xlsa17(xlsa17(res, att), include_resnet_features=True)


def test_xlsa17_unreadable_mat_file_is_explained(xlsa17):
    folder = xlsa17()
    with open(os.path.join(folder, "att_splits.mat"), "wb") as handle:
        handle.write(b"MATLAB 5.0 MAT-file, truncated")
    with pytest.raises(ValueError, match="att_splits.mat is not a readable MATLAB file"):
        load_xlsa17(folder, include_resnet_features=True)


def test_xlsa17_images_stored_at_different_depths(xlsa17, tmp_path):
    """APY-like: the first images live one folder deeper than the others."""
    stored = [
        f"/BS/data/VOC/JPEGImages/{AWA[label]}/img_{row}.jpg" if row < 8 else f"/BS/data/yahoo_{AWA[label]}_{row}.jpg"
        for row, label in enumerate(LABELS)
    ]
    root = tmp_path / "apy"
    for path in stored:
        write_image(str(root / "/".join(path.split("/")[3:])))
    protocol = load_xlsa17(xlsa17(res={"image_files": cells(stored)}), image_root=str(root))
    paths = protocol.data["test"].cast_column("image", datasets.Image(decode=False))["image"]
    assert [p["path"] for p in paths][::2] == [
        str(root / "VOC/JPEGImages/antelope/img_3.jpg"), str(root / "yahoo_killer+whale_11.jpg"), str(root / "yahoo_humpback+whale_13.jpg"),
        str(root / "yahoo_beaver_15.jpg"),
    ]


def test_xlsa17_image_errors(xlsa17, awa_images, tmp_path):
    folder = xlsa17()
    with pytest.raises(ValueError, match="needs image_root.*include_resnet_features=True"):
        load_xlsa17(folder)
    with pytest.raises(ValueError, match="No trailing part of the stored image path"):
        load_xlsa17(folder, image_root=str(tmp_path))
    with pytest.raises(ValueError, match="res101.mat does not exist"):
        load_xlsa17(str(tmp_path), include_resnet_features=True)
    moved = os.path.join(awa_images, "JPEGImages", "beaver")
    os.rename(moved, moved + "_away")
    try:
        with pytest.raises(ValueError, match="2 of 16 image files are missing: .*beaver_10001.jpg"):
            load_xlsa17(folder, image_root=awa_images)
    finally:
        os.rename(moved + "_away", moved)


def test_cfzsl_trains_on_an_xlsa17_folder(xlsa17, awa_images, tiny_base):
    """The command line's path: no validation split, val_loc's class held out to calibrate."""
    from hf_zsl.runs import fit_method

    folder = xlsa17()
    os.symlink(awa_images, os.path.join(folder, "images"))
    protocol = make_protocols("gzsl", dataset=folder, shots=None)["AWA2"]
    model, info = fit_method("cfzsl", tiny_base, protocol, {"epochs": 2})
    assert info["val_unseen_classes"] == ["killer whale"] and info["val_seen_source"] == "held-out training images"
    assert model.config.seen_class_names == ["antelope", "grizzly bear", "killer whale"]
