"""Metrics: hand-checked values, clear errors, and the ``evaluate`` modules agreeing with the plain functions."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from hf_zsl import metrics as M

# 3 classes; class 0 has 4 samples (3 right), class 1 has 1 (right), class 2 has 1 (wrong).
PREDS, REFS = [0, 0, 0, 1, 1, 0], [0, 0, 0, 0, 1, 2]


def test_accuracy_and_mean_per_class_accuracy():
    assert M.accuracy(PREDS, REFS) == pytest.approx(4 / 6)
    assert M.per_class_accuracy(PREDS, REFS) == {0: 0.75, 1: 1.0, 2: 0.0}
    assert M.mean_per_class_accuracy(PREDS, REFS) == pytest.approx((0.75 + 1 + 0) / 3)
    as_arrays = M.mean_per_class_accuracy(np.array(PREDS), np.array(REFS), classes=[0, 1, 2, 5])
    assert as_arrays == pytest.approx((0.75 + 1 + 0) / 3), "classes without references are left out"


def test_gzsl_scores_each_group_by_per_class_mean_and_counts_cross_group_errors():
    # seen {0, 1}: class 0 : 1/2 (one predicted unseen), class 1 : 1/1; unseen {2, 3}: class 2 : 1/1, class 3 : 0/2.
    preds = [0, 2, 1, 2, 0, 2]
    refs = [0, 0, 1, 2, 3, 3]
    result = M.gzsl(preds, refs, seen_classes=[0, 1], unseen_classes=[2, 3])
    assert result["seen"] == pytest.approx(0.75)
    assert result["unseen"] == pytest.approx(0.5)
    assert result["harmonic"] == pytest.approx(2 * 0.75 * 0.5 / 1.25)


def test_harmonic_is_zero_when_both_groups_are_zero():
    assert M.harmonic_mean(0.0, 0.0) == 0.0
    assert M.gzsl([1, 0], [0, 1], seen_classes=[0], unseen_classes=[1]) == {"seen": 0.0, "unseen": 0.0, "harmonic": 0.0}


def test_base_to_new_uses_plain_accuracy_within_each_group():
    result = M.base_to_new([0, 0, 0, 2, 3], [0, 0, 1, 2, 2], base_classes=[0, 1], new_classes=[2, 3])
    assert result["base"] == pytest.approx(2 / 3)
    assert result["new"] == pytest.approx(1 / 2)
    assert result["harmonic"] == pytest.approx(M.harmonic_mean(2 / 3, 1 / 2))


def test_zsl_unseen_is_mean_per_class_accuracy_over_unseen_labels():
    assert M.zsl_unseen([3, 4, 4], [3, 3, 4], unseen_classes=[3, 4]) == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: M.accuracy([0, 1], [0]), "differ in length"),
        (lambda: M.accuracy([], []), "empty"),
        (lambda: M.accuracy([0.5], [0]), "integer class ids"),
        (lambda: M.accuracy([[0]], [[0]]), "1-D"),
        (lambda: M.mean_per_class_accuracy([0, 7], [0, 1], classes=[0, 1]), r"predicted class ids \[7\]"),
        (lambda: M.mean_per_class_accuracy([0], [0], classes=[]), "`classes` is empty"),
        (lambda: M.gzsl([0, 2], [0, 2], seen_classes=[0, 1], unseen_classes=[1, 2]), "overlap"),
        (lambda: M.gzsl([0, 2], [0, 5], seen_classes=[0, 1], unseen_classes=[2]), r"reference class ids \[5\]"),
        (lambda: M.gzsl([0, 1], [0, 1], seen_classes=[0, 1], unseen_classes=[2]), "`unseen_classes`: that group"),
        (lambda: M.gzsl([0], [0], seen_classes=[0, 0], unseen_classes=[1]), "more than once"),
        (lambda: M.gzsl([0], [0], seen_classes=[0], unseen_classes=None), "`unseen_classes` is required"),
        (lambda: M.base_to_new([2, 2], [0, 2], base_classes=[0, 1], new_classes=[2]), "base-class samples"),
        (lambda: M.zsl_unseen([0], [3], unseen_classes=[3, 4]), r"predicted class ids \[0\]"),
    ],
)
def test_bad_inputs_raise_clear_value_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def _random_case(seed: int):
    rng = np.random.RandomState(seed)
    refs = rng.randint(0, 6, size=50)
    preds = np.where(rng.rand(50) < 0.6, refs, rng.randint(0, 6, size=50))
    return preds.tolist(), refs.tolist()


def _module_and_function_args(name: str, preds: list[int], refs: list[int]) -> dict:
    if name in ("accuracy", "mean_per_class_accuracy"):
        return {}
    if name == "gzsl":
        return {"seen_classes": [0, 1, 2], "unseen_classes": [3, 4, 5]}
    if name == "zsl_unseen":
        return {"unseen_classes": list(range(6))}
    # base_to_new: predictions must stay within each sample's group.
    for i, (p, r) in enumerate(zip(preds, refs)):
        if (p < 3) != (r < 3):
            preds[i] = r
    return {"base_classes": [0, 1, 2], "new_classes": [3, 4, 5]}


_FUNCTIONS = {
    "accuracy": lambda p, r: {"accuracy": M.accuracy(p, r)},
    "mean_per_class_accuracy": lambda p, r: {"mean_per_class_accuracy": M.mean_per_class_accuracy(p, r)},
    "gzsl": M.gzsl,
    "base_to_new": M.base_to_new,
    "zsl_unseen": lambda p, r, **kw: {"zsl_unseen": M.zsl_unseen(p, r, **kw)},
}


@pytest.mark.parametrize("name", M.METRICS)
def test_evaluate_module_agrees_with_plain_function(name):
    module = M.load_metric(name)
    preds, refs = _random_case(seed=len(name))
    kwargs = _module_and_function_args(name, preds, refs)
    expected = _FUNCTIONS[name](preds, refs, **kwargs)
    # add_batch + compute exercises evaluate's incremental path, not only compute(**all).
    module.add_batch(predictions=preds[:20], references=refs[:20])
    module.add_batch(predictions=preds[20:], references=refs[20:])
    got = module.compute(**kwargs)
    assert got == pytest.approx(expected)
    assert all(0.0 <= v <= 1.0 for v in got.values())


def test_evaluate_module_raises_the_function_errors():
    with pytest.raises(ValueError, match="not in `seen_classes`"):
        M.load_metric("gzsl").compute(predictions=[0, 9], references=[0, 1], seen_classes=[0], unseen_classes=[1])
    with pytest.raises(ValueError, match="empty"):
        M.load_metric("accuracy").compute(predictions=[], references=[])


@pytest.mark.parametrize("name", M.METRICS)
def test_evaluate_modules_refuse_what_their_int64_features_would_truncate(name):
    """Float class ids would be cast to int64 (0.9 → 0) and score as right; the module raises as the function does."""
    preds, refs = [0.9, 1.4], [0, 1]
    with pytest.raises(ValueError, match="`predictions` must hold integer class ids"):
        M.load_metric(name).compute(predictions=preds, references=refs)
    module = M.load_metric(name)
    with pytest.raises(ValueError, match="`references` must hold integer class ids"):
        module.add_batch(predictions=[0, 1], references=[True, False])
    with pytest.raises(ValueError, match="`predictions` must hold integer class ids"):
        module.add(prediction=0.5, reference=0)


def test_unknown_metric_name():
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        M.load_metric("f1")


_OFFLINE_SCRIPT = """
import json
from hf_zsl.metrics import METRICS, load_metric
base = {"predictions": [0, 1, 1], "references": [0, 1, 0]}
cases = {"gzsl": {"seen_classes": [0], "unseen_classes": [1]}, "zsl_unseen": {"unseen_classes": [0, 1]},
         "base_to_new": {"predictions": [0, 1], "references": [0, 1], "base_classes": [0], "new_classes": [1]}}
print(json.dumps({name: load_metric(name).compute(**(base | cases.get(name, {}))) for name in METRICS}))
"""


def test_modules_load_offline_with_an_empty_hf_home(tmp_path):
    """A fresh process, empty HF_HOME, offline, and a Hub endpoint that refuses connections."""
    env = dict(os.environ, HF_HOME=str(tmp_path / "home"), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               HF_ENDPOINT="http://127.0.0.1:9", HF_EVALUATE_OFFLINE="1")
    done = subprocess.run([sys.executable, "-c", _OFFLINE_SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert results["accuracy"] == {"accuracy": pytest.approx(2 / 3)}
    assert results["gzsl"] == {"seen": 0.5, "unseen": 1.0, "harmonic": pytest.approx(2 / 3)}
    assert results["base_to_new"] == {"base": 1.0, "new": 1.0, "harmonic": 1.0}
    assert set(results) == set(M.METRICS)
    assert (tmp_path / "home" / "modules" / "evaluate_modules").is_dir()


def test_top_k_accuracy():
    scores = [[0.1, 0.5, 0.4], [0.7, 0.2, 0.1], [0.2, 0.3, 0.5]]
    assert M.top_k_accuracy(scores, [2, 0, 0], 1) == pytest.approx(1 / 3)
    assert M.top_k_accuracy(scores, [2, 0, 0], 2) == pytest.approx(2 / 3)
    assert M.top_k_accuracy(scores, [2, 0, 0], 5) == 1.0  # fewer classes than k: every class counts
    with pytest.raises(ValueError, match="one row per reference"):
        M.top_k_accuracy(scores, [0, 1], 1)
