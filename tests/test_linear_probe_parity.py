"""Linear-probe parity with CoOp's ``lpclip`` (fixture ``lpclip``; docs §3): hf_zsl's C search fits the same
C values in the same order, keeps the same C and classifier, and the ``paper`` (logistic) probe model
serves its predictions from raw image embeddings."""

import math

import pytest
import torch
from test_coop_parity import CLASS_NAMES, fixture_clip, openai_tokenizer
from test_official_fixtures import _load

import hf_zsl
from hf_zsl.methods.lpclip import lpclip_search
from hf_zsl.tiny import clip_image_processor

SHOTS = ("1", "2", "4", "8", "16")
TOLERANCE = 1e-5
# L-BFGS stops at scikit-learn's tol 1e-4, so another machine's last bits (libm, BLAS, SciPy's L-BFGS; here C
# itself came out 1 ulp apart at 8 shots) move the iterate it stops at: coefficients agree to 1e-3 of their
# scale (measured: 2e-4 relative at most, 16 shots, C = 10), the decisions exactly.
COEF_TOLERANCE = 1e-3


def split(t, name: str, indices: torch.Tensor | None = None):
    features, labels = t[f"{name}_features"], t[f"{name}_labels"]
    if indices is not None:
        features, labels = features[indices], labels[indices]
    return features.numpy(), labels.numpy()


@pytest.mark.parametrize("shot", SHOTS)
def test_c_search_matches_lpclip(shot):
    t, meta = _load("lpclip")
    record = meta["per_shot"][shot]
    choice = lpclip_search(split(t, "train", t[f"shot{shot}.train_indices"]), split(t, "val", t[f"shot{shot}.val_indices"]))
    assert choice.fitted == pytest.approx(record["fitted_C_in_order"], rel=1e-12)
    assert math.isclose(choice.C, record["chosen_C"], rel_tol=1e-12)
    coef, intercept = torch.from_numpy(choice.classifier.coef_), torch.from_numpy(choice.classifier.intercept_)
    scale = max(1.0, float(t[f"shot{shot}.coef"].abs().max()))
    assert float((coef.float() - t[f"shot{shot}.coef"]).abs().max()) <= COEF_TOLERANCE * scale
    assert float((intercept.float() - t[f"shot{shot}.intercept"]).abs().max()) <= COEF_TOLERANCE * scale
    val_x, _ = split(t, "val", t[f"shot{shot}.val_indices"])
    assert (choice.classifier.predict(val_x) == t[f"shot{shot}.val_predictions"].numpy()).all()


def test_the_paper_probe_serves_lpclips_predictions():
    t, meta = _load("lpclip")
    base, _ = fixture_clip()
    model = hf_zsl.build("linear_probe", base, tokenizer=openai_tokenizer(), image_processor=clip_image_processor(32),
                         class_names=CLASS_NAMES)
    assert model.config.form == "logistic" and not model.normalises_image_features  # a real base: the paper preset
    choice = lpclip_search(split(t, "train", t["shot16.train_indices"]), split(t, "val", t["shot16.val_indices"]))
    model.set_logistic(torch.from_numpy(choice.classifier.coef_), torch.from_numpy(choice.classifier.intercept_))
    text = model.tokenizer(CLASS_NAMES, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**text, image_embeds=t["test_features"]).logits_per_image
    assert torch.equal(logits.argmax(-1), t["shot16.test_predictions"])
    expected = torch.from_numpy(choice.classifier.decision_function(t["test_features"].numpy())).float()
    assert float((logits - expected).abs().max()) <= TOLERANCE
