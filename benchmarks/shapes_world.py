"""Shapes world speed, single process: images/s of (a) rendering alone, (b) dataset generation
(render + PNG + caption, no cache), (c) the whole few-shot suite written to an empty cache, and
(d) the seconds to load that suite back from the cache.

    python benchmarks/shapes_world.py [--images 5000] [--size 32]

Goal: (a) >= 2000 images/s at 32 px on one core; (d) well under a second per task.
"""

import argparse
import os
import tempfile
import time

import numpy as np

from hf_zsl import shapes


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:8.0f} images/s ({n} in {seconds:.2f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    scenes = shapes.sample_scenes(rng, args.images, shapes.Distribution(lightings=shapes.LIGHTINGS))
    start = time.perf_counter()
    for scene in scenes:
        shapes.render_scene(scene, args.size)
    print(f"(a) render only          {rate(args.images, time.perf_counter() - start)}")

    start = time.perf_counter()
    shapes.generate_pairs(args.images, seed=0, image_size=args.size)
    print(f"(b) generate, no cache   {rate(args.images, time.perf_counter() - start)}")

    with tempfile.TemporaryDirectory() as cache:
        os.environ["HF_ZSL_CACHE"] = cache
        start = time.perf_counter()
        suite = shapes.fewshot_suite(k=16, seed=0, image_size=args.size)
        total = sum(len(split) for name in suite for split in shapes.task_data(name, 0, args.size).values())
        print(f"(c) suite, cold cache    {rate(total, time.perf_counter() - start)}  [{len(suite)} tasks]")

        start = time.perf_counter()
        shapes.fewshot_suite(k=16, seed=0, image_size=args.size)
        seconds = time.perf_counter() - start
        print(f"(d) suite from cache     {seconds:.2f} s ({seconds / len(suite):.3f} s per task, protocols included)")


if __name__ == "__main__":
    main()
