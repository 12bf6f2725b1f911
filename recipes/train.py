"""Train a method on a protocol from a YAML config (thin: parse, then call hf_zsl).

    accelerate launch recipes/train.py --config recipes/configs/linear_probe_fewshot.yaml
    accelerate launch --config_file recipes/accelerate/cpu_2proc.yaml recipes/train.py --config ...
    python recipes/train.py --config ... --set shots=4 seed=2 output_dir=outputs/lp4

Config keys: method, protocol, shots (a number, or ``all``; absent: the protocol's, as ``hf-zsl train``:
every image for gzsl, 16 otherwise), seed, model, dataset, output_dir,
overwrite (replace an output_dir that holds files, once training succeeds),
``preset`` (``paper``: the official recipe, the default on real bases; ``embedded``: the default on the
embedded bases; see README "Presets"), and optionally ``settings``: fields replacing the preset's settings,
the others keeping the preset's (``hf_zsl.training.FitSettings`` for most methods, e.g. ``settings: {epochs: 10}``;
DFZSL's ``DFZSLSettings`` nests one mapping per stage, e.g. ``settings: {generator: {epochs: 30}}``).
The training seed is the protocol's ``seed`` unless ``settings`` sets its own.
"""

import argparse
import json
import os

import yaml

from accelerate.state import AcceleratorState

from hf_zsl.commands import train
from hf_zsl.constants import ALL_SHOTS, protocol_shots
from hf_zsl.registry import get_method
from hf_zsl.training import distributed_state

KEYS = ("method", "protocol", "shots", "seed", "model", "dataset", "output_dir", "overwrite", "preset")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override config keys")
    args = parser.parse_args()
    with open(args.config) as handle:
        config = yaml.safe_load(handle)
    for item in args.set:
        key, value = item.split("=", 1)
        config[key] = yaml.safe_load(value)
    unknown = set(config) - set(KEYS) - {"settings"}
    if unknown:
        raise SystemExit(f"Unknown config keys {sorted(unknown)}; known: {list(KEYS)} and 'settings'.")
    settings = config.get("settings")
    try:  # fail on an unknown preset or a misspelt field now, not after the features are computed
        get_method(config["method"]).check_run(config.get("model", "embedded"), config.get("preset"), settings)
    except (ValueError, TypeError) as error:
        raise SystemExit(str(error)) from None
    shots, seed = config.get("shots"), config.get("seed", 1)
    if shots not in (None, ALL_SHOTS) and (isinstance(shots, bool) or not isinstance(shots, int) or shots < 1):
        raise SystemExit(f"Config key 'shots' takes a positive number of images per class or 'all'; got {shots!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SystemExit(f"Config key 'seed' takes a non-negative integer; got {seed!r}.")
    overwrite = config.get("overwrite", False)
    if not isinstance(overwrite, bool):
        raise SystemExit(f"Config key 'overwrite' takes true or false (unquoted); got {overwrite!r}.")
    state = distributed_state()

    def write_run_json(record: dict, folder: str) -> None:  # inside the run, published with it
        path = os.path.join(folder, "run.json")
        with open(path) as handle:
            run = json.load(handle)  # what train recorded of the run (method, protocol, tasks...)
        run |= {
            "world_size": state.num_processes,
            "device": str(state.device),
            # what the fit's Accelerator ran with (accelerate launch's mixed_precision: bf16 → "bf16"); "no"
            # where no Trainer ran (e.g. the paper preset's linear probe, fitted by scikit-learn)
            "mixed_precision": AcceleratorState().mixed_precision if AcceleratorState._shared_state else "no",
            "config": config,
            "preset": record.get("preset"),
            "settings": record.get("settings"),
            "train_seconds": record["train_seconds"],
        }
        with open(path, "w") as handle:
            json.dump(run, handle, indent=2)

    train(
        config["method"], config["protocol"], protocol_shots(config["protocol"], shots), seed,
        config.get("model", "embedded"), config.get("dataset", "shapes"), config["output_dir"], settings,
        overwrite=overwrite, write_extra=write_run_json, preset=config.get("preset"),
    )


if __name__ == "__main__":
    main()
