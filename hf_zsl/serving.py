"""Serving hf_zsl models through ``pipeline("zero-shot-image-classification")``.

The models themselves do the work (they strip the pipeline's hypothesis template from the label ids
and apply their own prompting; see ``modeling/prompting.py``), so the stock pipeline already serves
them, with or without ``hf_zsl`` installed. With ``hf_zsl`` imported, the task's pipeline class is
this subclass, which adds one thing for hf_zsl models only: bad candidate label lists (empty, blank,
duplicated, not strings) raise a clear error before tokenization instead of a tokenizer traceback.
Other models run exactly as with the stock class.
"""

from transformers.pipelines import PIPELINE_REGISTRY
from transformers.pipelines.zero_shot_image_classification import (
    ZeroShotImageClassificationPipeline as StockZeroShotImageClassificationPipeline,
)

from .labels import check_candidate_labels

TASK = "zero-shot-image-classification"


class ZeroShotImageClassificationPipeline(StockZeroShotImageClassificationPipeline):
    """The stock pipeline plus candidate-label validation for hf_zsl models."""

    def preprocess(self, image, candidate_labels=None, *args, **kwargs):
        if self.model.config.model_type.startswith("hfzsl_"):
            check_candidate_labels(candidate_labels)
        return super().preprocess(image, candidate_labels, *args, **kwargs)


def register_pipeline() -> None:
    """Serve the task with :class:`ZeroShotImageClassificationPipeline`, keeping its other settings.

    (``PIPELINE_REGISTRY.register_pipeline`` would do the same but warns about overwriting a task.)
    """
    PIPELINE_REGISTRY.supported_tasks[TASK]["impl"] = ZeroShotImageClassificationPipeline
