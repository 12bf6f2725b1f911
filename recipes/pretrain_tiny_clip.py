"""Pretrain the embedded tiny CLIP or tiny SigLIP on the shapes world (reproducible, seeded, CPU).

    python recipes/pretrain_tiny_clip.py --config recipes/configs/pretrain_tiny_clip.yaml
    python recipes/pretrain_tiny_clip.py --config recipes/configs/pretrain_tiny_siglip.yaml
    python recipes/pretrain_tiny_clip.py --config recipes/configs/pretrain_tiny_clip.yaml \
        --output-dir /tmp/tiny_clip max_steps=50 num_pairs=5000

Overrides are ``key=value`` pairs (values parsed as YAML) applied on top of the config file.
Writes config, safetensors weights, tokenizer, image processor and ``training_info.json`` to
``--output-dir`` (default: the package's ``hf_zsl/embedded/tiny_clip``, what ``"embedded"`` loads, or
``hf_zsl/embedded/tiny_siglip`` for ``family: siglip``, what ``"embedded-siglip"`` loads).
"""

import argparse

import yaml

from hf_zsl.modeling.modeling_base import EMBEDDED_BASE, EMBEDDED_SIGLIP_BASE, resolve_base_path
from hf_zsl.pretraining import PretrainConfig, pretrain


def parse_overrides(pairs: list[str]) -> dict:
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"Override {pair!r} is not of the form key=value.")
        values[key.strip()] = yaml.safe_load(value)
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="YAML file of PretrainConfig fields")
    parser.add_argument("--output-dir", default=None, help="folder to write (default: the embedded model's folder)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or log lines")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")
    args = parser.parse_args()

    with open(args.config) as f:
        values = yaml.safe_load(f) or {}
    values.update(parse_overrides(args.overrides))
    config = PretrainConfig.from_dict(values)
    default_base = EMBEDDED_SIGLIP_BASE if config.family == "siglip" else EMBEDDED_BASE
    output_dir = args.output_dir or resolve_base_path(default_base)
    info = pretrain(config, output_dir, progress=not args.quiet)
    print(
        f"pretrained {info['parameters']:,} parameters for {info['steps']} steps in {info['wall_seconds'] / 60:.1f} min "
        f"({info['train_cpu_seconds'] / 60:.1f} CPU min training, {info['num_threads']} thread(s); final loss "
        f"{info['final_loss']:.3f}; held-out {info['validation']}); saved {info['folder_bytes'] / 1e6:.2f} MB to {output_dir}"
    )


if __name__ == "__main__":
    main()
