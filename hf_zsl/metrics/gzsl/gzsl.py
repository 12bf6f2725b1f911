"""GZSL seen / unseen / harmonic accuracy as a local ``evaluate`` metric; math in ``hf_zsl.metrics.functional``."""

import evaluate

from hf_zsl.metrics import _info  # not its classes by name: evaluate takes a module's first Metric class as its metric
from hf_zsl.metrics.functional import gzsl

_DESCRIPTION = (
    "Generalized zero-shot learning: test images of seen and unseen classes are classified over the union of "
    "both label sets. `seen` and `unseen` are mean per-class accuracies over each group's test images; "
    "`harmonic` is 2*seen*unseen / (seen + unseen), 0 when both are 0."
)
_INPUTS = """
Args:
    predictions (`list[int]`): predicted class ids, each in seen_classes or unseen_classes.
    references (`list[int]`): true class ids, same length, not empty; both groups must occur.
    seen_classes (`list[int]`): the classes seen in training.
    unseen_classes (`list[int]`): the classes held out of training (disjoint from seen_classes).
Returns:
    seen, unseen, harmonic (`float`): in [0, 1].
Examples:
    >>> load_metric("gzsl").compute(predictions=[0, 1, 2, 2], references=[0, 1, 2, 3], seen_classes=[0, 1],
    ...                             unseen_classes=[2, 3])
    {'seen': 1.0, 'unseen': 0.5, 'harmonic': 0.6666666666666666}
"""


class Gzsl(_info.ClassIdMetric):
    """Seen, unseen and harmonic-mean accuracy of the GZSL protocol."""

    def _info(self) -> evaluate.MetricInfo:
        return _info.metric_info(_DESCRIPTION, _INPUTS)

    def _compute(self, predictions, references, seen_classes=None, unseen_classes=None) -> dict[str, float]:
        return gzsl(predictions, references, seen_classes, unseen_classes)
