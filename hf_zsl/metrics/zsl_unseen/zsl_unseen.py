"""Conventional ZSL accuracy as a local ``evaluate`` metric; arithmetic in ``hf_zsl.metrics.functional``."""

import evaluate

from hf_zsl.metrics import _info  # not its classes by name: evaluate takes a module's first Metric class as its metric
from hf_zsl.metrics.functional import zsl_unseen

_DESCRIPTION = (
    "Conventional zero-shot score: unseen-class test images classified among the unseen classes only, "
    "scored by mean per-class accuracy."
)
_INPUTS = """
Args:
    predictions (`list[int]`): predicted class ids, each one of `unseen_classes`.
    references (`list[int]`): true class ids, each one of `unseen_classes`, same length, not empty.
    unseen_classes (`list[int]`): the unseen label set.
Returns:
    zsl_unseen (`float`): in [0, 1].
Examples:
    >>> load_metric("zsl_unseen").compute(predictions=[3, 4], references=[3, 3], unseen_classes=[3, 4])
    {'zsl_unseen': 0.5}
"""


class ZslUnseen(_info.ClassIdMetric):
    """Mean per-class accuracy restricted to the unseen label set."""

    def _info(self) -> evaluate.MetricInfo:
        return _info.metric_info(_DESCRIPTION, _INPUTS)

    def _compute(self, predictions, references, unseen_classes=None) -> dict[str, float]:
        return {"zsl_unseen": zsl_unseen(predictions, references, unseen_classes)}
