"""Mean per-class accuracy as a local ``evaluate`` metric; arithmetic in ``hf_zsl.metrics.functional``."""

import evaluate

from hf_zsl.metrics import _info  # not its classes by name: evaluate takes a module's first Metric class as its metric
from hf_zsl.metrics.functional import mean_per_class_accuracy

_DESCRIPTION = "Mean over reference classes of the accuracy on each class's samples (balanced accuracy)."
_INPUTS = """
Args:
    predictions (`list[int]`): predicted class ids.
    references (`list[int]`): true class ids, same length, not empty.
    classes (`list[int]`, optional): the label set; when given, every id must belong to it.
Returns:
    mean_per_class_accuracy (`float`): in [0, 1].
Examples:
    >>> load_metric("mean_per_class_accuracy").compute(predictions=[0, 0, 0, 1], references=[0, 0, 0, 0])
    {'mean_per_class_accuracy': 0.75}
"""


class MeanPerClassAccuracy(_info.ClassIdMetric):
    """Balanced accuracy: every class weighs the same whatever its number of test samples."""

    def _info(self) -> evaluate.MetricInfo:
        return _info.metric_info(_DESCRIPTION, _INPUTS)

    def _compute(self, predictions, references, classes=None) -> dict[str, float]:
        return {"mean_per_class_accuracy": mean_per_class_accuracy(predictions, references, classes)}
