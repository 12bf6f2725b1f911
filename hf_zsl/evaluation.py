"""Scoring a model on a protocol: the metric records of DESIGN §6 (fractions in [0, 1])."""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import numpy as np
import torch

from . import metrics
from .features import image_batches, image_features
from .modeling.modeling_base import HfZslPreTrainedModel
from .protocols import BaseToNewProtocol, DomainShiftProtocol, EvaluationProtocol, FewShotProtocol, GZSLProtocol


def class_logits(
    model: HfZslPreTrainedModel,
    dataset: datasets.Dataset,
    class_names: Sequence[str],
    chunk_size: int = 4096,
    pixel_batch_size: int = 256,
) -> torch.Tensor:
    """Scores of every image of ``dataset`` against ``class_names``, shape `(len(dataset), len(class_names))`.

    Frozen CLIP image features come from the feature cache; the label set is encoded once. A model
    that also scores the images themselves (``needs_pixel_values``) gets them in batches of
    ``pixel_batch_size`` from the image processor, next to their cached features.

    Raises:
        ValueError: naming the rows, if an image cannot be decoded.
    """
    features = image_features(model, dataset).to(model.device)
    text = model.tokenizer(list(class_names), padding=True, return_tensors="pt").to(model.device)
    with torch.inference_mode():
        if not model.needs_pixel_values:
            chunks = [model(**text, image_embeds=chunk).logits_per_image for chunk in features.split(chunk_size)]
        else:
            chunks = []
            for start, images in image_batches(dataset, batch_size=pixel_batch_size):
                pixels = model.image_processor(images=images, return_tensors="pt")["pixel_values"].to(model.device)
                embeds = features[start : start + len(images)]
                chunks.append(model(**text, pixel_values=pixels, image_embeds=embeds).logits_per_image)
        return torch.cat([chunk.float().cpu() for chunk in chunks]) if chunks else torch.zeros(0, len(class_names))


def predict(model: HfZslPreTrainedModel, dataset: datasets.Dataset, class_names: Sequence[str]) -> np.ndarray:
    """Index into ``class_names`` of the top-scoring class of every image, shape `(len(dataset),)`."""
    return class_logits(model, dataset, class_names).argmax(dim=-1).numpy()


def classification_scores(model: HfZslPreTrainedModel, dataset: datasets.Dataset, class_names: Sequence[str], column: str) -> dict:
    """CLIP_benchmark's classification record: ``accuracy`` (top-1), ``acc5`` (top-5) and
    ``mean_per_class_recall`` (the mean over classes of the fraction of their images found)."""
    logits = class_logits(model, dataset, class_names).numpy()
    references = _references(dataset, column)
    return {
        "accuracy": metrics.accuracy(logits.argmax(axis=-1), references),
        "acc5": metrics.top_k_accuracy(logits, references, 5),
        "mean_per_class_recall": metrics.mean_per_class_accuracy(logits.argmax(axis=-1), references),
    }


def _references(dataset: datasets.Dataset, label_column: str) -> np.ndarray:
    return np.asarray(dataset[label_column], dtype=np.int64)


def evaluate_protocol(model: HfZslPreTrainedModel, protocol: EvaluationProtocol) -> dict:
    """The protocol's metrics for ``model`` on its test splits.

    * few-shot: ``accuracy`` over all classes, with ``acc5`` and ``mean_per_class_recall``
      (:func:`classification_scores`);
    * domain shift: ``accuracy`` = mean over the target domains, plus ``source_accuracy`` and
      per-domain ``domains``;
    * GZSL: ``seen`` / ``unseen`` / ``harmonic`` (per-class means, predicting over all classes) and
      ``zsl_unseen`` (per-class mean on unseen images, predicting among unseen classes);
    * base-to-new: ``base`` (among base classes), ``new`` (among new classes), ``harmonic``.
    """
    column = protocol.label_column
    splits = protocol.test_splits()
    if isinstance(protocol, FewShotProtocol):
        return classification_scores(model, splits["test"], protocol.class_names, column)
    if isinstance(protocol, DomainShiftProtocol):
        per_domain = {
            domain: metrics.accuracy(predict(model, test, protocol.class_names), _references(test, column))
            for domain, test in splits.items()
        }
        return {
            "accuracy": float(np.mean([per_domain[d] for d in protocol.target_domains])),
            "source_accuracy": float(np.mean([per_domain[d] for d in protocol.source_domains])),
            "domains": per_domain,
        }
    if isinstance(protocol, GZSLProtocol):
        names = protocol.class_names
        seen_ids = [names.index(c) for c in protocol.seen_classes]
        unseen_ids = [names.index(c) for c in protocol.unseen_classes]
        test = datasets.concatenate_datasets([splits["seen"], splits["unseen"]])
        references = _references(test, column)
        record = metrics.gzsl(predict(model, test, names), references, seen_ids, unseen_ids)
        unseen = splits["unseen"]
        among_unseen = predict(model, unseen, protocol.unseen_classes)
        record["zsl_unseen"] = metrics.zsl_unseen(
            np.asarray(unseen_ids)[among_unseen], _references(unseen, column), unseen_ids
        )
        return record
    if isinstance(protocol, BaseToNewProtocol):
        base, new = splits["base"], splits["new"]
        base_accuracy = metrics.accuracy(predict(model, base, protocol.base_classes), _references(base, column))
        new_accuracy = metrics.accuracy(predict(model, new, protocol.new_classes), _references(new, column))
        return {"base": base_accuracy, "new": new_accuracy, "harmonic": metrics.harmonic_mean(base_accuracy, new_accuracy)}
    raise TypeError(f"No evaluation is defined for {type(protocol).__name__}.")


def chance_levels(protocol: EvaluationProtocol) -> dict:
    """What a uniform guess scores on each of :func:`evaluate_protocol`'s metrics."""
    if isinstance(protocol, GZSLProtocol):
        n = len(protocol.class_names)
        return {"seen": 1 / n, "unseen": 1 / n, "harmonic": 1 / n, "zsl_unseen": 1 / len(protocol.unseen_classes)}
    if isinstance(protocol, BaseToNewProtocol):
        base, new = 1 / len(protocol.base_classes), 1 / len(protocol.new_classes)
        return {"base": base, "new": new, "harmonic": metrics.harmonic_mean(base, new)}
    return {"accuracy": 1 / len(protocol.class_names)}
