"""Serving hf_zsl models through ``pipeline("zero-shot-image-classification")``.

The models themselves do the prompting (they strip the pipeline's hypothesis template from the
label ids and apply their own templates / learned context; see ``modeling/prompting.py``) and cache
label features per label set, so the stock pipeline already serves them, with or without
``hf_zsl`` installed. With ``hf_zsl`` imported, the task's pipeline class is this subclass, which
adds two things for hf_zsl models only:

* bad candidate label lists (empty, blank, duplicated, not strings) raise a clear error before
  tokenization instead of a tokenizer traceback;
* images of every PIL mode are converted to RGB correctly (:func:`hf_zsl.images.load_rgb`: 16-bit,
  float and transparent images included) or refused with a clear error;
* the tokenized label set is reused across calls (the stock pipeline re-tokenizes every label for
  every image, which costs more than the image tower at 1000 labels).

Other models run exactly as with the stock class.
"""

from collections import OrderedDict

from transformers.pipelines import PIPELINE_REGISTRY
from transformers.pipelines.zero_shot_image_classification import (
    ZeroShotImageClassificationPipeline as StockZeroShotImageClassificationPipeline,
)

from .images import load_rgb
from .labels import check_candidate_labels

TASK = "zero-shot-image-classification"
DEFAULT_HYPOTHESIS_TEMPLATE = "This is a photo of {}."


class ZeroShotImageClassificationPipeline(StockZeroShotImageClassificationPipeline):
    """The stock pipeline plus label validation and a tokenized-label cache for hf_zsl models."""

    max_cached_label_sets = 8

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._tokenized_labels: OrderedDict = OrderedDict()

    def preprocess(
        self, image, candidate_labels=None, hypothesis_template=DEFAULT_HYPOTHESIS_TEMPLATE, timeout=None,
        tokenizer_kwargs=None,
    ):
        if not self.model.config.model_type.startswith("hfzsl_"):
            return super().preprocess(image, candidate_labels, hypothesis_template, timeout, tokenizer_kwargs)
        candidate_labels = check_candidate_labels(candidate_labels)
        inputs = self.image_processor(images=[load_rgb(image, timeout=timeout)], return_tensors="pt")
        inputs = inputs.to(self.dtype)
        inputs["candidate_labels"] = candidate_labels
        inputs["text_inputs"] = [self._tokenize(candidate_labels, hypothesis_template, tokenizer_kwargs or {})]
        return inputs

    def _tokenize(self, labels: list[str], hypothesis_template: str, tokenizer_kwargs: dict):
        key = (tuple(labels), hypothesis_template, tuple(sorted(tokenizer_kwargs.items())))
        if key not in self._tokenized_labels:
            texts = [hypothesis_template.format(label) for label in labels]
            self._tokenized_labels[key] = self.tokenizer(
                texts, return_tensors="pt", **{"padding": True, **tokenizer_kwargs}
            )
            if len(self._tokenized_labels) > self.max_cached_label_sets:
                self._tokenized_labels.popitem(last=False)
        self._tokenized_labels.move_to_end(key)
        return self._tokenized_labels[key]


def register_pipeline() -> None:
    """Serve the task with :class:`ZeroShotImageClassificationPipeline`, keeping its other settings.

    (``PIPELINE_REGISTRY.register_pipeline`` would do the same but warns about overwriting a task.)
    """
    PIPELINE_REGISTRY.supported_tasks[TASK]["impl"] = ZeroShotImageClassificationPipeline
