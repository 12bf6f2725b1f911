"""Serving soak: many ``pipeline("zero-shot-image-classification")`` calls on hf_zsl's zero-shot model
over the embedded base, with changing label sets and bad inputs interleaved.

    PYTHONPATH=. python benchmarks/soak.py [--calls 10000] [--bad-every 3] [--report-every 1000] [--threads 1]

Every bad call (empty / duplicated / blank / non-string labels, a single string, images of the wrong
type, an empty or out-of-range image, a missing file) must raise ``ValueError`` or ``TypeError``;
every good call (RGB, greyscale, palette, transparent and 16-bit images) must return one score per
label, summing to 1. Prints the resident memory (``VmRSS``) and the sizes of the label caches at
intervals, and exits non-zero if a call got the wrong outcome, a cache outgrew its bound, or memory
grew by more than ``--max-growth-mib`` after the first report.
"""

import argparse
import itertools
import random
import sys
import time

import numpy as np
import torch
from PIL import Image
from transformers import pipeline

import hf_zsl

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white", "pink", "brown"]
SHAPES = ["circle", "square", "triangle", "star", "hexagon", "cross", "heart", "diamond"]
VOCABULARY = [f"{colour} {shape}" for colour in COLOURS for shape in SHAPES]


def good_images() -> list[Image.Image]:
    """Valid inputs of several PIL modes (RGB, L, P, RGBA, I;16)."""
    rng = np.random.RandomState(0)
    rgb = Image.fromarray((rng.rand(40, 40, 3) * 255).astype(np.uint8))
    deep = Image.fromarray((rng.rand(40, 40) * 65535).astype(np.uint16))
    return [rgb, rgb.convert("L"), rgb.convert("P"), rgb.convert("RGBA"), deep]


BAD_CALLS = {  # name → (image or None for a good image, labels or None for a good label set)
    "empty labels": (None, []),
    "duplicate labels": (None, ["red circle", "blue star", "Red  Circle"]),
    "blank label": (None, ["red circle", "  "]),
    "non-string label": (None, ["red circle", 7]),
    "None label": (None, [None, "red circle"]),
    "single string": (None, "red circle"),
    "int image": (42, None),
    "bytes image": (b"\x89PNG", None),
    "missing file": ("/nonexistent/image.png", None),
    "empty image": (Image.new("RGB", (0, 4)), None),
    "float image out of range": (Image.fromarray(np.full((8, 8), 3.0, np.float32)), None),
}


def resident_mib() -> float:
    """This process's resident memory (``VmRSS`` of /proc/self/status), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--bad-every", type=int, default=3, help="every n-th call is a bad one (default 3)")
    parser.add_argument("--report-every", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-growth-mib", type=float, default=20.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = random.Random(0)

    model = hf_zsl.build("zeroshot", "embedded")
    classifier = pipeline(
        "zero-shot-image-classification", model=model, tokenizer=model.tokenizer, image_processor=model.image_processor
    )
    images, bad_kinds = itertools.cycle(good_images()), itertools.cycle(BAD_CALLS)
    counts = {"good": 0, "answered": 0, "bad": 0, "refused": 0}
    wrong: list[str] = []
    reports: list[float] = []
    start = time.perf_counter()
    print(f"{'calls':>7} {'RSS MiB':>8} {'label-feature cache':>20} {'tokenized sets':>15} {'calls/s':>8}")
    for call in range(1, args.calls + 1):
        labels = rng.sample(VOCABULARY, rng.randint(1, 12))
        image = next(images)
        if call % args.bad_every == 0:
            kind = next(bad_kinds)
            bad_image, bad_labels = BAD_CALLS[kind]
            counts["bad"] += 1
            try:
                classifier(image if bad_image is None else bad_image, candidate_labels=labels if bad_labels is None else bad_labels)
                wrong.append(f"call {call} ({kind}) was answered")
            except (ValueError, TypeError):
                counts["refused"] += 1
        else:
            counts["good"] += 1
            try:
                answer = classifier(image, candidate_labels=labels)
            except Exception as error:  # noqa: BLE001 — any error on a good call is a failure to report
                wrong.append(f"call {call} (good, {image.mode}) raised {type(error).__name__}: {error}")
                continue
            if sorted(a["label"] for a in answer) == sorted(labels) and abs(sum(a["score"] for a in answer) - 1) < 1e-4:
                counts["answered"] += 1
            else:
                wrong.append(f"call {call} (good) answered {answer}")
        if call % args.report_every == 0 or call == args.calls:
            reports.append(resident_mib())
            print(f"{call:>7} {reports[-1]:>8.1f} {len(model.text_cache._entries):>20} "
                  f"{len(classifier._tokenized_labels):>15} {call / (time.perf_counter() - start):>8.1f}", flush=True)

    growth = reports[-1] - reports[0]
    bounded = len(model.text_cache._entries) <= model.text_cache.max_entries and (
        len(classifier._tokenized_labels) <= classifier.max_cached_label_sets
    )
    print(f"good calls answered: {counts['answered']} / {counts['good']}; bad calls refused: {counts['refused']} / {counts['bad']}")
    print(f"RSS growth after the first report: {growth:+.1f} MiB; label caches within bounds: {bounded}; "
          f"label-feature cache misses: {model.text_cache.misses}")
    for line in wrong[:20]:
        print("WRONG:", line)
    return 0 if not wrong and bounded and growth <= args.max_growth_mib else 1


if __name__ == "__main__":
    sys.exit(main())
