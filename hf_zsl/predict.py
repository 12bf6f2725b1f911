"""``hf-zsl predict``: classify image files against label strings, one JSON object per image.

Scores are the stock ``zero-shot-image-classification`` pipeline's (a softmax over the labels, or one
sigmoid per label for zero-shot over a SigLIP base; sorted by score), but the labels are tokenized and encoded once for the whole batch (the model's
label-feature cache) and the images go through the image tower in batches.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterator, Sequence

from .labels import check_candidate_labels
from .logging import get_logger, progress_bars_enabled
from .templates import TEMPLATE_SETS, resolve_templates

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".ppm", ".tif", ".tiff", ".webp")
PROGRESS_MIN_IMAGES = 16
"""A progress bar is drawn for more images than this."""

logger = get_logger(__name__)


def collect_images(paths: Sequence[str]) -> list[str]:
    """The image files ``paths`` name: files as given, folders searched recursively (in sorted order) for
    files with an image extension (:data:`IMAGE_EXTENSIONS`).

    Raises:
        ValueError: if a path does not exist, or the paths hold no image file at all.
    """
    found = []
    for path in paths:
        if os.path.isdir(path):
            for folder, subfolders, files in os.walk(path):
                subfolders.sort()
                found += [os.path.join(folder, name) for name in sorted(files) if name.lower().endswith(IMAGE_EXTENSIONS)]
        elif os.path.exists(path):
            found.append(path)
        else:
            raise ValueError(f"{path} does not exist; give image files or folders of images.")
    if not found:
        raise ValueError(f"No image files ({', '.join(IMAGE_EXTENSIONS)}) under {', '.join(paths)}.")
    return found


def read_labels(labels: Sequence[str] | None, labels_file: str | None) -> list[str]:
    """The candidate labels: ``labels`` then the lines of ``labels_file`` (blank lines skipped), checked."""
    labels = list(labels or [])
    if labels_file:
        with open(labels_file, encoding="utf-8") as handle:
            labels += [line.strip() for line in handle if line.strip()]
    if not labels:
        raise ValueError("No labels: pass --labels L1 L2 ... or --labels-file FILE (one label per line).")
    return check_candidate_labels(labels)


def read_templates(value: str) -> list[str]:
    """``--templates``: a set name of ``hf_zsl.TEMPLATE_SETS``, one template containing ``{}``, or a file
    with one template per line."""
    if value not in TEMPLATE_SETS and "{}" not in value and os.path.isfile(value):
        with open(value, encoding="utf-8") as handle:
            templates = [line.strip() for line in handle if line.strip()]
        bad = [t for t in templates if t.count("{}") != 1]
        if not templates or bad:
            raise ValueError(f"{value}: every line must be a template with one '{{}}' for the label; got {bad or 'none'}.")
        return templates
    return resolve_templates(value)


def set_templates(model, templates: list[str]) -> None:
    """Prompt ``model`` (zero-shot CLIP) with ``templates`` instead of its own."""
    if model.config.method != "zeroshot":
        raise ValueError(
            f"--templates applies to zero-shot CLIP (a base, or a saved zeroshot model); this {model.config.method} "
            "model's prompts are part of what it learned. Drop --templates."
        )
    model.config.set_prompting(model.tokenizer, templates)
    model.text_cache.clear()


def _read_image(path: str):
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")


def _predictions(scores, labels: list[str], top_k: int | None) -> list[dict]:
    ranked = sorted(zip(scores.tolist(), labels), key=lambda pair: -pair[0])
    return [{"label": label, "score": score} for score, label in ranked[:top_k]]


def predict_images(model, paths: list[str], labels: list[str], top_k: int | None = None, batch_size: int = 32) -> Iterator[dict]:
    """Yield ``{"image": path, "predictions": [{"label", "score"}, ...]}`` for every path, in order (the
    ``top_k`` best labels, all when ``None``), or ``{"image": path, "error": message}`` for a file that
    cannot be read as an image."""
    import torch
    from tqdm.auto import tqdm

    text = model.tokenizer(labels, padding=True, return_tensors="pt").to(model.device)
    bar = tqdm(total=len(paths), desc="images", unit="img", disable=len(paths) <= PROGRESS_MIN_IMAGES or not progress_bars_enabled())
    for start in range(0, len(paths), batch_size):
        batch, images, results = paths[start : start + batch_size], [], {}
        for path in batch:
            try:
                images.append((path, _read_image(path)))
            except (OSError, ValueError) as error:
                results[path] = {"image": path, "error": f"cannot read the image: {error}"}
        if images:
            inputs = model.image_processor(images=[image for _, image in images], return_tensors="pt")
            inputs = {k: v.to(model.device, model.dtype) if v.is_floating_point() else v.to(model.device) for k, v in inputs.items()}
            with torch.inference_mode():
                logits = model(**text, **inputs).logits_per_image
            for (path, _), scores in zip(images, model.probabilities(logits.float()).cpu()):
                results[path] = {"image": path, "predictions": _predictions(scores, labels, top_k)}
        for path in batch:
            yield results[path]
        bar.update(len(batch))
    bar.close()


def write_csv(results: list[dict], path: str) -> None:
    """One row per (image, rank): ``image, rank, label, score, error`` (an unreadable image: one row with its error)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "rank", "label", "score", "error"])
        for result in results:
            if "error" in result:
                writer.writerow([result["image"], "", "", "", result["error"]])
            for rank, prediction in enumerate(result.get("predictions", []), start=1):
                writer.writerow([result["image"], rank, prediction["label"], prediction["score"], ""])


def predict(
    model_name: str,
    paths: Sequence[str],
    labels: Sequence[str] | None = None,
    labels_file: str | None = None,
    templates: str | None = None,
    top_k: int | None = None,
    batch_size: int = 32,
    csv_path: str | None = None,
) -> int:
    """Run ``hf-zsl predict``: print one JSON line per image on stdout, optionally write a CSV.

    Returns:
        How many images were classified (the others are reported, with their error, on stdout and stderr).

    Raises:
        ValueError: for bad arguments (no labels, no images, a suite run folder, templates on a trained model).
    """
    from .loading import load

    labels = read_labels(labels, labels_file)
    files = collect_images(paths)
    if top_k is not None and top_k < 1:
        raise ValueError(f"--top-k must be a positive number of labels, got {top_k}.")
    model = load(model_name)
    if templates:
        set_templates(model, read_templates(templates))
    logger.info("predicting %d images against %d labels", len(files), len(labels))
    results, succeeded = [], 0
    for result in predict_images(model, files, labels, top_k, batch_size):
        print(json.dumps(result), flush=True)
        if "error" in result:
            print(f"hf-zsl predict: {result['image']}: {result['error']}", file=sys.stderr)
        else:
            succeeded += 1
        results.append(result)
    if csv_path:
        write_csv(results, csv_path)
    return succeeded
