"""Base-to-new accuracies and harmonic mean as a local ``evaluate`` metric; math in ``hf_zsl.metrics.functional``."""

import evaluate

from hf_zsl.metrics import _info  # not its classes by name: evaluate takes a module's first Metric class as its metric
from hf_zsl.metrics.functional import base_to_new

_DESCRIPTION = (
    "Base-to-new generalisation (CoCoOp protocol): base-class test images are classified among the base classes, "
    "new-class test images among the new classes; `base` and `new` are the two accuracies and `harmonic` "
    "is 2*base*new / (base + new), 0 when both are 0."
)
_INPUTS = """
Args:
    predictions (`list[int]`): predicted class ids; within the sample's own group.
    references (`list[int]`): true class ids, same length, not empty; both groups must occur.
    base_classes (`list[int]`): the classes trained on.
    new_classes (`list[int]`): the held-out classes (disjoint from base_classes).
Returns:
    base, new, harmonic (`float`): in [0, 1].
Examples:
    >>> load_metric("base_to_new").compute(predictions=[0, 0, 2, 3], references=[0, 1, 2, 3], base_classes=[0, 1],
    ...                                    new_classes=[2, 3])
    {'base': 0.5, 'new': 1.0, 'harmonic': 0.6666666666666666}
"""


class BaseToNew(_info.ClassIdMetric):
    """Base accuracy, new accuracy and their harmonic mean."""

    def _info(self) -> evaluate.MetricInfo:
        return _info.metric_info(_DESCRIPTION, _INPUTS)

    def _compute(self, predictions, references, base_classes=None, new_classes=None) -> dict[str, float]:
        return base_to_new(predictions, references, base_classes, new_classes)
