"""DFZSL's development protocol: how its defaults were chosen without touching test data.

    python benchmarks/dfzsl_dev.py [--grid '{"simulator": {"theta": 1.0}}' ...] [--seed 1]

The protocol uses only the *seen* classes of the shapes GZSL split: 16 of the 64 seen classes
(seeded draw) play the unseen classes, training uses the other seen classes' training images, and
scores come from the seen classes' validation images. Zero-shot CLIP is printed for reference.
Each ``--grid`` entry is a JSON mapping of :class:`hf_zsl.methods.dfzsl.DFZSLSettings` overrides.
"""

from __future__ import annotations

import argparse
import json
import os

import datasets
import numpy as np
import torch

import hf_zsl
from hf_zsl import shapes
from hf_zsl.evaluation import evaluate_protocol
from hf_zsl.methods import dfzsl
from hf_zsl.protocols import GZSLProtocol, relabel
from hf_zsl.training import settings_from_dict

DEFAULT_GRID = [{"simulator": {"theta": theta}} for theta in (1.0, 0.3, 0.07)]


def development_protocol(pseudo_unseen: int = 16, seed: int = 0) -> GZSLProtocol:
    """GZSL over the shapes split's seen classes only, scored on their validation images."""
    full = shapes.gzsl(None, seed)
    seen = full.seen_classes
    pseudo = sorted(np.random.default_rng(seed).choice(seen, pseudo_unseen, replace=False).tolist())
    ids = [full.class_names.index(c) for c in seen]

    def seen_rows(split: str) -> datasets.Dataset:
        data = full.data[split]
        return relabel(data.select(np.flatnonzero(np.isin(np.asarray(data["label"]), ids))), seen)

    splits = datasets.DatasetDict(train=seen_rows("train"), validation=seen_rows("validation"), test=seen_rows("validation"))
    return GZSLProtocol(splits, pseudo)


def scores(record: dict) -> dict:
    return {k: round(100 * v, 1) for k, v in record.items() if isinstance(v, float)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", nargs="*", type=json.loads, default=DEFAULT_GRID)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("HF_ZSL_PROGRESS", "0")
    torch.set_num_threads(args.threads)
    protocol = development_protocol()
    print("zeroshot", scores(evaluate_protocol(hf_zsl.build("zeroshot", "embedded"), protocol)), flush=True)
    for overrides in args.grid:
        model = hf_zsl.build("dfzsl", "embedded")
        settings = settings_from_dict(dfzsl.DFZSLSettings, {"seed": args.seed, **overrides})
        info = dfzsl.fit(model, protocol.training_view(), settings)
        print(json.dumps(overrides), scores(evaluate_protocol(model, protocol)), f"kappa {info['kappa']:.1f}", flush=True)


if __name__ == "__main__":
    main()
