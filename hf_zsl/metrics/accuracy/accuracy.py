"""Accuracy as a local ``evaluate`` metric; the arithmetic is ``hf_zsl.metrics.functional.accuracy``."""

import evaluate

from hf_zsl.metrics import _info  # not its classes by name: evaluate takes a module's first Metric class as its metric
from hf_zsl.metrics.functional import accuracy

_DESCRIPTION = "Fraction of predicted class ids equal to the reference class ids (few-shot and domain-shift score)."
_INPUTS = """
Args:
    predictions (`list[int]`): predicted class ids.
    references (`list[int]`): true class ids, same length, not empty.
Returns:
    accuracy (`float`): in [0, 1].
Examples:
    >>> load_metric("accuracy").compute(predictions=[0, 1, 1], references=[0, 1, 0])
    {'accuracy': 0.6666666666666666}
"""


class Accuracy(_info.ClassIdMetric):
    """Plain accuracy."""

    def _info(self) -> evaluate.MetricInfo:
        return _info.metric_info(_DESCRIPTION, _INPUTS)

    def _compute(self, predictions, references) -> dict[str, float]:
        return {"accuracy": accuracy(predictions, references)}
