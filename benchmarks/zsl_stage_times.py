"""Wall time of each training stage of DFZSL (and of CFZSL's fit) on the shapes GZSL split.

    python benchmarks/zsl_stage_times.py [--threads 2] [--methods dfzsl cfzsl] [--seed 1]

Prints, per method, the seconds of every stage ``fit`` reports (DFZSL: server probe, vMF
simulator, FLPT, generator, classifier), plus the vMF sampler's throughput at the embedded model's
width and at ViT-B/16's. Features are cached first so image encoding is not counted.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F

from hf_zsl.runs import make_protocols, run_method
from hf_zsl.vmf import VonMisesFisher


def sampler_throughput(dim: int, kappa: float, classes: int = 64, per_class: int = 50, repeats: int = 20) -> float:
    """vMF samples per second of ``rsample`` for ``classes`` means in ``dim`` dimensions."""
    generator = torch.Generator().manual_seed(0)
    loc = F.normalize(torch.randn(classes, dim, generator=generator), dim=-1)
    distribution = VonMisesFisher(loc, kappa)
    distribution.rsample((per_class,), generator)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        distribution.rsample((per_class,), generator)
    return repeats * classes * per_class / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=["dfzsl", "cfzsl"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("HF_ZSL_PROGRESS", "0")
    torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}")
    run_method("zeroshot", "gzsl", make_protocols("gzsl", shots=None, seed=args.seed), "embedded", None, args.seed)
    for method in args.methods:
        start = time.perf_counter()
        record, models = run_method(method, "gzsl", make_protocols("gzsl", shots=None, seed=args.seed), "embedded", None, args.seed)
        wall = time.perf_counter() - start
        fit = next(iter(models.values())).card_info["fit"]
        stages = fit.get("stage_seconds", {"fit": fit["train_seconds"]})
        print(f"{method}: " + ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in stages.items())
              + f"; fit total {fit['train_seconds']:.1f} s; fit + evaluation {wall:.1f} s; H {100 * record['harmonic']:.1f}")
    for dim, kappa in ((128, 882.0), (512, 205.0)):
        print(f"vMF rsample, d={dim}, kappa={kappa:g}: {sampler_throughput(dim, kappa):,.0f} samples/s")


if __name__ == "__main__":
    main()
