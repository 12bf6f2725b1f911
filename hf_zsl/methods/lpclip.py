"""The CLIP paper's linear probe as CoOp's ``lpclip/linear_probe.py`` fits it (``docs/official_recipes.md`` §3).

scikit-learn's multinomial ``LogisticRegression`` (L-BFGS, ``max_iter`` 1000, L2, with intercept) on raw
image embeddings; ``C`` is chosen on validation by a sweep over :data:`SWEEP` and a log-scale bisection.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression

SWEEP = (1e6, 1e4, 1e2, 1, 1e-2, 1e-4, 1e-6)  # lpclip's initial C values, in its order


@dataclasses.dataclass
class LogisticChoice:
    """The search's outcome: the kept ``C``, its fitted classifier and validation accuracy, every ``C`` fitted in order."""

    C: float
    classifier: LogisticRegression
    val_accuracy: float
    fitted: list[float]


def fit_logistic(features: np.ndarray, labels: np.ndarray, C: float, max_iter: int = 1000) -> LogisticRegression:
    """``LogisticRegression(solver="lbfgs", max_iter, C)`` (L2, with intercept) fitted on `(n, dim)` ``features``."""
    with warnings.catch_warnings():  # lpclip's few-shot fits may stop at max_iter, as theirs do
        warnings.simplefilter("ignore")
        return LogisticRegression(solver="lbfgs", max_iter=max_iter, C=C).fit(features, labels)


def lpclip_search(
    train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], steps: int = 8, max_iter: int = 1000
) -> LogisticChoice:
    """lpclip's C search on validation, exactly.

    Fit every ``C`` of :data:`SWEEP`; ``peak`` = the first with the best validation accuracy; then ``steps``
    times fit ``c_left`` and ``c_right`` (starting at ``peak / 10``, ``peak · 10``), keep the right model if
    it validates strictly better, else the left, and halve the interval in log10 towards the kept end
    (in lpclip's floating-point order of operations). The last step's model is kept.

    Args:
        train, val: ``(features (n, dim), labels (n,))``.
    """
    fitted = []

    def fit_and_score(C: float) -> tuple[LogisticRegression, float]:
        fitted.append(float(C))
        classifier = fit_logistic(*train, C, max_iter)
        return classifier, float(np.mean(classifier.predict(val[0]) == val[1]))

    sweep = [fit_and_score(C)[1] for C in SWEEP]
    peak = SWEEP[int(np.argmax(sweep))]
    left, right = 1e-1 * peak, 1e1 * peak
    choice = None
    for _ in range(steps):
        (left_model, left_accuracy), (right_model, right_accuracy) = fit_and_score(left), fit_and_score(right)
        if left_accuracy < right_accuracy:
            choice = (right, right_model, right_accuracy)
            left, right = 0.5 * (np.log10(right) + np.log10(left)), np.log10(right)
        else:
            choice = (left, left_model, left_accuracy)
            left, right = np.log10(left), 0.5 * (np.log10(right) + np.log10(left))
        left, right = np.power(10, left), np.power(10, right)
    if choice is None:  # no bisection step: the sweep's peak
        choice = (peak, *fit_and_score(peak))
    return LogisticChoice(float(choice[0]), choice[1], choice[2], fitted)
