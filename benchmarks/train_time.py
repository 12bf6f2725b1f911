"""Training time of every trained method on one 16-shot task of the embedded shapes world.

    python benchmarks/train_time.py [--task colour_shape] [--shots 16] [--threads 2]

Prints, per method: wall seconds of ``fit`` (feature extraction excluded: features are cached
once per image and shared by every method, so they are computed before timing), the seconds the
method itself reports, and the validation choice it made. Target: <= 60 s per method.
"""

import argparse
import os
import time

import torch

import hf_zsl
from hf_zsl import shapes
from hf_zsl.features import image_features
from hf_zsl.runs import fit_method


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--task", default="colour_shape")
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("HF_ZSL_PROGRESS", "0")
    torch.set_num_threads(args.threads)

    protocol = shapes.fewshot_suite(args.shots, 1)[args.task]
    warm = hf_zsl.build("zeroshot", args.model)
    for split in (protocol.train, protocol.val):
        image_features(warm, split, progress=False)  # the shared feature cache, filled once

    print(f"task={args.task} shots={args.shots} threads={args.threads} classes={len(protocol.class_names)}")
    print(f"{'method':<16} {'wall s':>8} {'reported s':>11}  choice")
    for name, entry in sorted(hf_zsl.METHODS.items()):
        if entry.fit is None:
            continue
        start = time.perf_counter()
        _, info = fit_method(name, args.model, protocol)
        wall = time.perf_counter() - start
        choice = {k: v for k, v in info.items() if k != "train_seconds"}
        print(f"{name:<16} {wall:>8.1f} {info['train_seconds']:>11.1f}  {choice}", flush=True)


if __name__ == "__main__":
    main()
