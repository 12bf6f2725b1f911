"""Import cost of hf_zsl against what it cannot avoid: torch + ``transformers.CLIPModel``.

Each statement runs in a fresh interpreter, several times, and the median wall time is printed
(seconds). ``import hf_zsl`` is lazy: the models register when transformers' Auto classes are
imported, so the fair comparison is "hf_zsl + Auto class" (everything a user needs to load a
saved model) against "torch + CLIPModel". The command line's ``--help`` loads neither.

    python benchmarks/import_time.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

STATEMENTS = {
    "python (interpreter start)": "pass",
    "torch + transformers.CLIPModel": "import torch; from transformers import CLIPModel",
    "import hf_zsl": "import hf_zsl",
    "hf_zsl + AutoModelForZeroShotImageClassification (registered)": (
        "import hf_zsl; from transformers import AutoModelForZeroShotImageClassification as A; "
        "from hf_zsl.modeling.configuration_zeroshot import ZeroShotCLIPConfig as C; "
        "assert C in A._model_mapping._extra_content"
    ),
    "hf_zsl.build (factory, registry: no Trainer / datasets)": "import hf_zsl; hf_zsl.build",
    "hf-zsl --help": "import sys; sys.argv = ['hf-zsl', '--help']; import runpy; runpy.run_module('hf_zsl.cli', run_name='__main__')",
}


def seconds(statement: str) -> float:
    """Wall time of a fresh interpreter running ``statement``."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="runs per statement (default: %(default)s)")
    args = parser.parse_args()
    medians = {}
    for name, statement in STATEMENTS.items():
        seconds(statement)  # warm the file cache
        medians[name] = statistics.median(seconds(statement) for _ in range(args.repeats))
        print(f"{medians[name]:7.2f} s  {name}", flush=True)
    baseline = medians["torch + transformers.CLIPModel"]
    for name in list(STATEMENTS)[2:5]:
        print(f"{medians[name] / baseline:7.2f} x  {name} / torch + CLIPModel")


if __name__ == "__main__":
    main()
