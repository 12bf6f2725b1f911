"""The ``MetricInfo`` every hf_zsl ``evaluate`` module shares: integer class-id predictions and references."""

import datasets
import evaluate

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
