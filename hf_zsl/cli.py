"""The ``hf-zsl`` command line (DESIGN §6): ``demo``, ``train`` and ``eval``."""

from __future__ import annotations

import argparse
import sys

from .modeling.modeling_base import EMBEDDED_BASE
from .runs import PROTOCOL_NAMES, SHAPES


def _shots(value: str) -> int | None:
    """``--shots``: a positive count, or ``all`` (every training image; ``None``)."""
    if value == "all":
        return None
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"--shots takes a positive number of images per class or 'all', not {value!r}")
    return int(value)


def _add_protocol_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", required=True, choices=PROTOCOL_NAMES)
    parser.add_argument(
        "--shots", type=_shots, default=16, help="labelled images per class, or 'all' (default 16; GZSL / DFZSL papers: all)"
    )
    parser.add_argument("--seed", type=int, default=1, help="few-shot sampling seed (default 1)")
    parser.add_argument(
        "--dataset",
        default=SHAPES,
        help="'shapes' (default), a DatasetDict or image folder, an xlsa17 folder (gzsl), a CoOp split_zhou_*.json, or a Hub dataset id",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-zsl", description="Adapt CLIP to new classes, the HuggingFace way.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run every method on every protocol of the shapes world, offline")
    demo.add_argument("--json", help="write the result records here")
    demo.add_argument("--chart", default="hf_zsl_demo.png", help="PNG chart path (default hf_zsl_demo.png)")
    demo.add_argument("--model", default=EMBEDDED_BASE, help="base encoder (default: the embedded tiny CLIP)")
    demo.add_argument("--methods", nargs="+", help="methods to run, or 'all' (default: zeroshot)")

    train = commands.add_parser("train", help="train a method on a protocol; writes DIR/eval_results.json")
    train.add_argument("--method", required=True)
    _add_protocol_arguments(train)
    train.add_argument("--model", default=EMBEDDED_BASE, help="base encoder: folder, Hub id, 'embedded' or 'embedded-siglip'")
    train.add_argument("--output-dir", required=True)
    train.add_argument("--overwrite", action="store_true", help="replace an --output-dir that holds files (after training)")

    evaluate = commands.add_parser("eval", help="evaluate a saved model (or a base CLIP, zero-shot) on a protocol")
    evaluate.add_argument("--model", required=True, help="saved hf_zsl folder, Hub id, base CLIP or 'embedded'")
    _add_protocol_arguments(evaluate)
    evaluate.add_argument("--json", help="write the result record here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from . import commands  # heavy imports only once the arguments parse

    try:
        if args.command == "demo":
            commands.demo(args.model, args.json, args.chart, args.methods)
        elif args.command == "train":
            commands.train(
                args.method, args.protocol, args.shots, args.seed, args.model, args.dataset, args.output_dir,
                overwrite=args.overwrite,
            )
        else:
            commands.evaluate(args.model, args.protocol, args.shots, args.seed, args.dataset, args.json)
    except (ValueError, TypeError, KeyError, OSError) as error:
        print(f"hf-zsl {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
