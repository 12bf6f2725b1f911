"""Protocol objects over generic datasets: exact shots, determinism, guards, splits, serialisation."""

import json
import os
import subprocess
import sys
from collections import Counter

import datasets
import numpy as np
import pytest

from hf_zsl.protocols import (
    BaseToNewProtocol,
    ClassAttributes,
    DomainShiftProtocol,
    EvaluationProtocol,
    FewShotProtocol,
    GZSLProtocol,
)

CLASSES = ["cat", "ant", "emu", "dog", "bee"]
DOMAINS = ["photo", "sketch", "cartoon"]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_data(per_class=None, short=None):
    """Splits with ``per_class`` rows of each class (``short``: ``{class: n}`` fewer train rows)."""
    per_class = per_class or {"train": 9, "validation": 5, "test": 6}
    features = datasets.Features(
        {"label": datasets.ClassLabel(names=CLASSES), "domain": datasets.Value("string"), "x": datasets.Value("int64")}
    )
    splits = {}
    for split, n in per_class.items():
        counts = [(short or {}).get(name, n) if split == "train" else n for name in CLASSES]
        labels = [c for c, count in enumerate(counts) for _ in range(count)]
        labels = list(np.random.default_rng(len(split)).permutation(labels))
        rows = {"label": labels, "domain": [DOMAINS[i % 3] for i in range(len(labels))], "x": list(range(len(labels)))}
        splits[split] = datasets.Dataset.from_dict(rows, features=features)
    return datasets.DatasetDict(splits)


def names_of(dataset):
    return [dataset.features["label"].names[i] for i in dataset["label"]]


def test_fewshot_takes_exactly_k_per_class_deterministically():
    data = make_data()
    first, again = FewShotProtocol(data, 4, seed=3), FewShotProtocol(data, 4, seed=3)
    assert first.train_indices.tolist() == again.train_indices.tolist()
    assert Counter(names_of(first.train)) == {name: 4 for name in CLASSES}
    assert first.train_indices.tolist() != FewShotProtocol(data, 4, seed=4).train_indices.tolist()
    assert len(first.test) == len(data["test"])


def test_fewshot_indices_are_the_same_in_another_process():
    # Import hf_zsl.protocols without hf_zsl/__init__ (which loads torch and transformers: slow).
    script = f"""
import json, sys, types
package = types.ModuleType("hf_zsl"); package.__path__ = [{os.path.join(REPO, "hf_zsl")!r}]
sys.modules["hf_zsl"] = package
sys.path.insert(0, {os.path.join(REPO, "tests")!r})
from test_protocols import make_data
from hf_zsl.protocols import FewShotProtocol
protocol = FewShotProtocol(make_data(), 4, seed=3)
print(json.dumps([protocol.train_indices.tolist(), protocol.val_indices.tolist()]))
"""
    env = dict(os.environ, PYTHONHASHSEED="123")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True).stdout
    protocol = FewShotProtocol(make_data(), 4, seed=3)
    assert json.loads(out.splitlines()[-1]) == [protocol.train_indices.tolist(), protocol.val_indices.tolist()]


def test_too_few_images_for_the_shots_names_the_class():
    data = make_data(short={"dog": 3})
    message = r"class 'dog' has 3 training images but 4 shots were asked; use --shots ≤ 3"
    with pytest.raises(ValueError, match=message):
        FewShotProtocol(data, 4)
    assert len(FewShotProtocol(data, 3).train) == 15


def test_json_round_trip_keeps_indices_and_checks_the_data():
    data = make_data()
    protocol = FewShotProtocol(data, 2, seed=7)
    text = protocol.to_json()
    loaded = EvaluationProtocol.from_json(text, data)
    assert isinstance(loaded, FewShotProtocol)
    assert loaded.train_indices.tolist() == protocol.train_indices.tolist()
    assert loaded.val_indices.tolist() == protocol.val_indices.tolist()
    assert loaded.to_dict() == protocol.to_dict()

    record = json.loads(text)
    record["train_indices"] = record["train_indices"][::-1]  # the file, not a re-draw, is the truth
    assert FewShotProtocol.from_json(json.dumps(record), data).train_indices.tolist() == record["train_indices"]
    with pytest.raises(ValueError, match="other data"):
        EvaluationProtocol.from_json(text, make_data({"train": 10, "validation": 5, "test": 6}))
    with pytest.raises(ValueError, match="as GZSLProtocol"):
        GZSLProtocol.from_json(text, data)


def test_validation_policies():
    data = make_data()
    assert FewShotProtocol(data, 8).val_policy == "fewshot_min(k,4)"
    assert Counter(names_of(FewShotProtocol(data, 8).val)) == {name: 4 for name in CLASSES}
    assert Counter(names_of(FewShotProtocol(data, 2).val)) == {name: 2 for name in CLASSES}
    assert len(FewShotProtocol(data, 2, val_policy="full_val").val) == len(data["validation"])
    assert FewShotProtocol(data, 2, val_policy="none").val is None
    assert FewShotProtocol(data, None).val_policy == "full_val"
    with pytest.raises(ValueError, match="Unknown validation policy"):
        FewShotProtocol(data, 2, val_policy="best_test")
    no_val = datasets.DatasetDict({"train": data["train"], "test": data["test"]})
    assert FewShotProtocol(no_val, 2).val_policy == "none"
    with pytest.raises(ValueError, match="needs a validation split"):
        FewShotProtocol(no_val, 2, val_policy="full_val")
    assert FewShotProtocol(data, 2).to_dict()["val_policy"] == "fewshot_min(k,4)"


def test_training_view_refuses_test_access():
    protocol = FewShotProtocol(make_data(), 2)
    view = protocol.training_view()
    assert len(view.train) == 10 and len(view.val) == 10
    assert view.class_names == CLASSES and view.to_dict() == protocol.to_dict()
    for name in ("test", "test_splits", "data"):
        with pytest.raises(PermissionError, match="off limits during training"):
            getattr(view, name)
    assert len(protocol.test) == 30  # the protocol itself still evaluates


def test_base_to_new_takes_the_first_half_in_label_id_order_as_base():
    """As CoCoOp's subsample_classes (sorted label ids, not names): with Caltech101's labels 'face' is a base class."""
    data = make_data()
    protocol = BaseToNewProtocol(data, k=2, seed=1)
    assert protocol.base_classes == ["cat", "ant", "emu"]  # ⌈5 / 2⌉ = 3
    assert protocol.new_classes == ["dog", "bee"]
    assert protocol.train.features["label"].names == ["cat", "ant", "emu"]
    assert Counter(names_of(protocol.train)) == {"cat": 2, "ant": 2, "emu": 2}
    assert set(names_of(protocol.val)) == {"cat", "ant", "emu"}
    tests = protocol.test_splits()
    assert tests["base"].features["label"].names == protocol.base_classes
    assert tests["new"].features["label"].names == protocol.new_classes
    assert len(tests["base"]) == 18 and len(tests["new"]) == 12
    assert sorted(names_of(tests["new"])) == sorted(["dog"] * 6 + ["bee"] * 6)
    assert protocol.to_dict()["base_classes"] == ["cat", "ant", "emu"]


def test_gzsl_trains_on_seen_classes_and_tests_both():
    data = make_data()
    attributes = ClassAttributes(np.eye(5)[::-1], CLASSES[::-1], ["a0", "a1", "a2", "a3", "a4"])
    protocol = GZSLProtocol(data, ["dog", "ant"], attributes, k=3)
    assert protocol.unseen_classes == ["ant", "dog"] and set(protocol.seen_classes) == {"cat", "emu", "bee"}
    assert not set(protocol.seen_classes) & set(protocol.unseen_classes)
    assert Counter(names_of(protocol.train)) == {"cat": 3, "emu": 3, "bee": 3}
    assert protocol.train.features["label"].names == CLASSES  # labels range over all classes
    tests = protocol.test_splits()
    assert set(names_of(tests["seen"])) == {"cat", "emu", "bee"}
    assert set(names_of(tests["unseen"])) == {"ant", "dog"}
    assert protocol.attributes.matrix.shape == (5, 5)
    assert protocol.attributes.class_names == CLASSES  # rows follow the data's class order
    np.testing.assert_array_equal(protocol.attributes.rows(["cat"]), np.eye(5)[[4]][:, ::-1])
    assert tuple(protocol.training_view().attributes.to_torch().shape) == (5, 5)
    with pytest.raises(ValueError, match="shape"):
        ClassAttributes(np.zeros((5, 2)), CLASSES, ["a0"])
    with pytest.raises(ValueError, match="not classes"):
        GZSLProtocol(data, ["yak"])
    assert GZSLProtocol.from_json(protocol.to_json(), data).attributes.matrix.shape == (5, 5)


def test_domain_shift_trains_on_sources_and_tests_each_target():
    data = make_data()
    protocol = DomainShiftProtocol(data, "domain", ["photo"], k=2)
    assert protocol.target_domains == ["cartoon", "sketch"]
    assert set(protocol.train["domain"]) == {"photo"} and set(protocol.val["domain"]) == {"photo"}
    assert Counter(names_of(protocol.train)) == {name: 2 for name in CLASSES}
    tests = protocol.test_splits()
    assert list(tests) == ["photo", "cartoon", "sketch"]
    assert all(set(split["domain"]) == {domain} for domain, split in tests.items())
    assert sum(map(len, tests.values())) == len(data["test"])
    with pytest.raises(ValueError, match="disjoint"):
        DomainShiftProtocol(data, "domain", ["photo"], ["photo", "sketch"])


def test_to_dict_records_the_protocol():
    record = FewShotProtocol(make_data(), 2, seed=5).to_dict()
    assert {"kind", "k", "seed", "val_policy", "class_names", "split_sizes", "fingerprint"} <= set(record)
    assert record["split_sizes"] == {"train": 10, "validation": 10, "test": 30}
    assert (record["kind"], record["k"], record["seed"]) == ("fewshot", 2, 5)
    json.dumps(record)


def test_the_test_split_is_never_a_training_or_validation_split():
    data = make_data()
    for arguments in ({"val_split": "test", "val_policy": "full_val"}, {"train_split": "test"}):
        with pytest.raises(ValueError, match="cannot also be the training or validation split"):
            FewShotProtocol(data, 2, **arguments)


def test_splits_with_another_class_label_are_refused():
    """A test split naming the same classes in another order would score ant images as cats."""
    data = make_data()
    reordered = datasets.ClassLabel(names=sorted(CLASSES))
    data["test"] = data["test"].cast_column("label", reordered)
    with pytest.raises(ValueError, match="'test' split's 'label' column .* differs from the 'train'"):
        FewShotProtocol(data, 2)
    data = make_data()
    data["validation"] = data["validation"].cast_column("label", datasets.ClassLabel(names=[n.upper() for n in CLASSES]))
    with pytest.raises(ValueError, match="'validation' split's"):
        GZSLProtocol(data, ["emu"])


def test_class_labels_that_differ_only_in_their_id_are_the_same_classes():
    data = make_data()
    data["test"] = data["test"].cast_column("label", datasets.ClassLabel(names=CLASSES, id="renamed"))
    assert len(FewShotProtocol(data, 2).test) == len(data["test"])


def test_base_to_new_needs_two_classes():
    data = make_data()
    one = datasets.DatasetDict({s: d.filter(lambda row: row["label"] == 0) for s, d in data.items()})
    one = datasets.DatasetDict({s: d.cast_column("label", datasets.ClassLabel(names=["cat"])) for s, d in one.items()})
    with pytest.raises(ValueError, match="at least two classes"):
        BaseToNewProtocol(one)


def test_domains_must_occur_in_the_data():
    data = make_data()
    with pytest.raises(ValueError, match=r"Domains \['zzz'\] do not occur"):
        DomainShiftProtocol(data, "domain", ["photo"], ["zzz"], k=2)
    with pytest.raises(ValueError, match=r"Domains \['painting'\] do not occur"):
        DomainShiftProtocol(data, "domain", ["painting"], ["sketch"])


def test_a_class_without_usable_training_images_is_named():
    with pytest.raises(ValueError, match="class 'bee' has no training image the protocol may use"):
        FewShotProtocol(make_data(short={"bee": 0}), 2)


def test_fewshot_validation_needs_a_positive_count():
    with pytest.raises(ValueError, match="Unknown validation policy"):
        FewShotProtocol(make_data(), 2, val_policy="fewshot_min(k,0)")


def test_class_attributes_refuse_non_finite_values_repeats_and_missing_rows():
    with pytest.raises(ValueError, match=r"attribute rows of \['ant'\] hold NaN"):
        ClassAttributes(np.array([[1.0, 0.0], [np.nan, 9.0]]), ["cat", "ant"], ["a", "b"])
    with pytest.raises(ValueError, match=r"Class names \['cat'\] occur more than once"):
        ClassAttributes(np.eye(2), ["cat", "cat"], ["a", "b"])
    with pytest.raises(ValueError, match=r"Attribute names \['a'\] occur more than once"):
        ClassAttributes(np.eye(2), ["cat", "ant"], ["a", "a"])
    with pytest.raises(ValueError, match=r"no row for \['emu', 'dog', 'bee'\]"):
        GZSLProtocol(make_data(), ["emu"], attributes=ClassAttributes(np.eye(2), ["cat", "ant"], ["a", "b"]))


def test_a_record_whose_indices_reach_unseen_images_is_refused():
    data = make_data()
    protocol = GZSLProtocol(data, ["emu"], k=2, seed=1)
    record = json.loads(protocol.to_json())
    emu = CLASSES.index("emu")
    record["train_indices"] += [i for i, label in enumerate(data["train"]["label"]) if label == emu][:3]
    with pytest.raises(ValueError, match="indices repeat an image or name 3 images"):
        EvaluationProtocol.from_json(json.dumps(record), data)
    record = json.loads(protocol.to_json())
    record["val_indices"] = record["val_indices"][:1] * 2
    with pytest.raises(ValueError, match="validation indices repeat an image"):
        EvaluationProtocol.from_json(json.dumps(record), data)
