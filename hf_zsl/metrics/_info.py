"""What every hf_zsl ``evaluate`` module shares: integer class-id predictions and references."""

import datasets
import evaluate

from hf_zsl.metrics.functional import _as_ids

_CITATION = """\
@misc{hf_zsl,
  title = {hf_zsl: zero-shot and few-shot adaptation of CLIP-style dual encoders},
  note = {metric arithmetic in hf_zsl.metrics.functional}
}
"""


def metric_info(description: str, inputs_description: str) -> evaluate.MetricInfo:
    """``MetricInfo`` with int64 ``predictions`` / ``references`` features and the given texts."""
    return evaluate.MetricInfo(
        description=description,
        citation=_CITATION,
        inputs_description=inputs_description,
        features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
    )


class ClassIdMetric(evaluate.Metric):
    """An ``evaluate.Metric`` over class ids that refuses non-integer input (``0.9``, ``True``) with the
    plain function's ``ValueError``, where the int64 features alone would silently truncate it."""

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of ``predictions`` and ``references`` (class ids) to score at :meth:`compute`.
        """
        _check_ids(predictions=predictions, references=references)
        return super().add_batch(predictions=predictions, references=references, **kwargs)

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Add one ``prediction`` and ``reference`` (class ids) to score at :meth:`compute`.
        """
        _check_ids(
            predictions=None if prediction is None else [prediction], references=None if reference is None else [reference]
        )
        return super().add(prediction=prediction, reference=reference, **kwargs)

    def compute(self, *, predictions=None, references=None, **kwargs):
        """The metric over what was added and the given ``predictions`` / ``references`` (class ids).
        """
        _check_ids(predictions=predictions, references=references)
        return super().compute(predictions=predictions, references=references, **kwargs)


def _check_ids(**inputs) -> None:
    """Raise ``ValueError`` unless each given input is a 1-D sequence of integer class ids."""
    for name, values in inputs.items():
        if values is not None:
            _as_ids(values, name)
