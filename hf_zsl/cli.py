"""The ``hf-zsl`` command line (DESIGN §6): ``demo``, ``train``, ``eval``, ``predict``, ``table`` and ``convert-open-clip``.

Parsing imports nothing heavy (``hf-zsl --help`` answers without loading torch): the commands'
modules are imported once the arguments parse.
"""

from __future__ import annotations

import argparse
import sys

from .constants import (
    ALL_SHOTS,
    DEMO_DEFAULT_METHODS,
    DEMO_SHOTS,
    DEMO_TRAINED_PROTOCOLS,
    EMBEDDED_BASE,
    FROM_RUN,
    PROTOCOL_NAMES,
    SHAPES,
    SHAPES_DOMAIN_PROTOCOLS,
    SHAPES_DOMAINS,
    protocol_shots,
)

DATASET_HELP = (
    f"'shapes'; 'shapes:<domain>' ({', '.join(SHAPES_DOMAINS)}: {' / '.join(SHAPES_DOMAIN_PROTOCOLS)} with train, "
    "validation and test under that lighting); a DatasetDict or image folder, an xlsa17 folder (gzsl), a CoOp "
    "split_zhou_*.json, or a Hub dataset id"
)


def _shots(value: str) -> int | str:
    """``--shots``: a positive count, or :data:`~hf_zsl.constants.ALL_SHOTS` (every training image); ``eval``'s
    default :data:`~hf_zsl.constants.FROM_RUN` passes through (argparse converts string defaults too). Not
    given (``None``), it is the protocol's (:func:`~hf_zsl.constants.protocol_shots`)."""
    if value in (FROM_RUN, ALL_SHOTS):
        return value
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"--shots takes a positive number of images per class or 'all', not {value!r}")
    return int(value)


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"takes a positive whole number, not {value!r}")
    return int(value)


def _verbosity_arguments(parser: argparse.ArgumentParser, default) -> None:
    """``--verbose`` / ``--quiet``, on the main parser (``default`` False) and on every command (not
    overriding the main parser's value), so they work before or after the command name."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-v", "--verbose", action="store_true", default=default,
        help="also show Trainer's per-step losses, transformers' messages and weight-loading bars (default: off)",
    )
    group.add_argument(
        "-q", "--quiet", action="store_true", default=default,
        help="only warnings and errors: no progress lines or bars (default: off)",
    )


def _add_demo(commands) -> None:
    trained = " / ".join(DEMO_TRAINED_PROTOCOLS)
    description = (
        f"Runs {' and '.join(DEMO_DEFAULT_METHODS)} on every protocol of the shapes world ({', '.join(PROTOCOL_NAMES)}), "
        "offline, on the embedded tiny CLIP (or --model). --methods runs other methods instead: each trained method "
        f"is trained and evaluated on the {trained} suite ({DEMO_SHOTS} shots, seed 1; skipped if it cannot train "
        "there). Prints a table with chance levels, writes a PNG chart and, with --json, the result records."
    )
    demo = commands.add_parser("demo", help="zero-shot CLIP on every protocol of the shapes world, offline", description=description)
    demo.add_argument("--json", metavar="PATH", help="write the result records here (default: not written)")
    demo.add_argument("--chart", default="hf_zsl_demo.png", metavar="PNG", help="PNG chart path (default: %(default)s)")
    demo.add_argument("--model", default=EMBEDDED_BASE, help="base encoder: folder, Hub id, 'embedded' (tiny CLIP) or 'embedded-siglip' (tiny SigLIP) (default: %(default)s)")
    demo.add_argument(
        "--methods", nargs="+", metavar="METHOD",
        help=f"methods to run, or 'all' (default: {' '.join(DEMO_DEFAULT_METHODS)})",
    )
    _verbosity_arguments(demo, argparse.SUPPRESS)


def _add_protocol_arguments(parser: argparse.ArgumentParser, required: bool) -> None:
    recorded = "" if required else "; default: the protocol the model was trained on"
    parser.add_argument("--protocol", required=required, choices=PROTOCOL_NAMES, help=f"the evaluation protocol{recorded}")
    parser.add_argument(
        "--shots", type=_shots, default=None if required else FROM_RUN,
        help=f"labelled images per training class, or '{ALL_SHOTS}' (default: "
        + ("" if required else "the model's run, else ")
        + "the protocol's: all for gzsl, as the GZSL papers; 16 per base class for base2new, as CoCoOp; 16 for "
        "fewshot and dg)",
    )
    parser.add_argument(
        "--seed", type=int, default=None if not required else 1,
        help="few-shot sampling seed (default: 1" + ("" if required else ", or the model's run") + ")",
    )


def _add_train(commands) -> None:
    train = commands.add_parser(
        "train", help="train a method on a protocol and save its model(s)",
        description="Trains --method on each task of --protocol and saves the model at DIR (a suite: DIR/<task>/ "
        "per task, with a README.md index), the results in DIR/eval_results.json and the run in DIR/run.json.",
    )
    train.add_argument("--method", required=True, help="a registered method (hf_zsl.METHODS), e.g. zeroshot, coop, tip_adapter")
    _add_protocol_arguments(train, required=True)
    train.add_argument("--dataset", default=SHAPES, help=f"{DATASET_HELP} (default: %(default)s)")
    train.add_argument("--model", default=EMBEDDED_BASE, help="base encoder: folder, Hub id, 'embedded' (tiny CLIP) or 'embedded-siglip' (tiny SigLIP) (default: %(default)s)")
    train.add_argument(
        "--preset",
        help="the method's settings: 'paper' (the official recipe) or 'embedded' (tuned for the embedded bases) "
        "(default: embedded on 'embedded' / 'embedded-siglip', paper on every other base)",
    )
    train.add_argument("--output-dir", required=True, metavar="DIR", help="where the model(s) and results go (required)")
    train.add_argument(
        "--overwrite", action="store_true",
        help="replace an --output-dir that holds an earlier run, once training succeeds (default: refuse)",
    )
    _verbosity_arguments(train, argparse.SUPPRESS)


def _add_eval(commands) -> None:
    evaluate = commands.add_parser(
        "eval", help="evaluate saved models (or base CLIPs, zero-shot) on protocols",
        description="Evaluates every --model on every --dataset: one result record per (model, dataset). A run "
        "folder written by 'train' is evaluated on the protocol, shots, seed and dataset it was trained on unless "
        "told otherwise; a suite run's task models each on their own task.",
    )
    evaluate.add_argument(
        "--model", required=True, nargs="+", metavar="MODEL",
        help="saved hf_zsl folder or suite run folder, Hub id, base CLIP folder or 'embedded' (zero-shot) (required)",
    )
    _add_protocol_arguments(evaluate, required=False)
    evaluate.add_argument("--dataset", nargs="+", help=f"{DATASET_HELP} (default: the model's run, else shapes)")
    evaluate.add_argument("--json", metavar="PATH", help="write the result record(s) here (default: printed only)")
    _verbosity_arguments(evaluate, argparse.SUPPRESS)


def _add_predict(commands) -> None:
    predict = commands.add_parser(
        "predict", help="classify image files against labels: one JSON object per image",
        description="Prints one JSON object per image on stdout: {\"image\": PATH, \"predictions\": [{\"label\", "
        "\"score\"}, ...]} sorted by score (as the zero-shot pipeline scores: a softmax over the labels, sigmoids for zero-shot over SigLIP). An unreadable file "
        "prints {\"image\": PATH, \"error\": ...} and a line on stderr, and the batch goes on; the exit status is "
        "nonzero only if no image was classified or the arguments are wrong. Give the paths before --labels "
        "(hf-zsl predict photos/ --labels cat dog), or after -- (--labels cat dog -- photos/).",
    )
    predict.add_argument("paths", nargs="+", metavar="PATH", help="image files, or folders searched recursively for images")
    predict.add_argument(
        "--model", default=EMBEDDED_BASE,
        help="saved hf_zsl folder, Hub id, or a base CLIP folder / 'embedded' (zero-shot) (default: %(default)s)",
    )
    predict.add_argument("--labels", nargs="+", metavar="LABEL", help="candidate labels (default: none; or --labels-file)")
    predict.add_argument("--labels-file", metavar="FILE", help="more candidate labels, one per line (default: none)")
    predict.add_argument(
        "--templates", metavar="TEMPLATES",
        help="zero-shot prompts: a set name (e.g. imagenet7), one template with '{}', or a file of templates, one per "
        "line (default: the model's own)",
    )
    predict.add_argument("--top-k", type=_positive, metavar="K", help="keep the K best labels per image (default: all)")
    predict.add_argument("--batch-size", type=_positive, default=32, metavar="B", help="images per forward pass (default: %(default)s)")
    predict.add_argument("--csv", metavar="OUT", help="also write the predictions as CSV, one row per (image, rank) (default: none)")
    _verbosity_arguments(predict, argparse.SUPPRESS)


def _add_table(commands) -> None:
    table = commands.add_parser(
        "table", help="render result files as a Markdown or CSV leaderboard",
        description="Reads result records (eval_results.json, 'eval --json' or 'demo --json' files) and prints one "
        "leaderboard row per record.",
    )
    table.add_argument("results", nargs="+", metavar="RESULTS", help="JSON files of result records")
    table.add_argument("--csv", action="store_true", help="print CSV instead of Markdown (default: Markdown)")
    _verbosity_arguments(table, argparse.SUPPRESS)


def _add_convert_open_clip(commands) -> None:
    convert = commands.add_parser(
        "convert-open-clip", help="convert an open_clip ViT CLIP checkpoint to a transformers CLIPModel folder",
        description="Writes OUT, a transformers CLIPModel folder (model.safetensors, config.json, the image processor "
        "of its preprocess_cfg) usable as --model of every command. SOURCE is an open_clip .safetensors checkpoint or "
        "a folder holding open_clip_model.safetensors; pickled .bin / .pt checkpoints are refused. Architectures "
        "CLIPModel cannot express (ResNet / timm / HF-text towers, CoCa, attentional pooling, layer scale, ...) are "
        "refused before anything is written.",
    )
    convert.add_argument("source", metavar="SOURCE", help="open_clip .safetensors checkpoint, or a folder holding one")
    convert.add_argument("out", metavar="OUT", help="the new CLIPModel folder (must not exist, or be empty)")
    convert.add_argument(
        "--config", metavar="JSON",
        help="the model's open_clip_config.json ({model_cfg, preprocess_cfg}) or a bare model_cfg JSON "
        "(default: open_clip_config.json beside SOURCE)",
    )
    convert.add_argument(
        "--tokenizer", metavar="TOKENIZER",
        help="tokenizer folder or Hub id to save into OUT (default: none written; pass one to hf_zsl.build later)",
    )
    _verbosity_arguments(convert, argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-zsl", description="Adapt CLIP to new classes, the HuggingFace way.")
    _verbosity_arguments(parser, False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_demo, _add_train, _add_eval, _add_predict, _add_table, _add_convert_open_clip):
        add(commands)
    return parser


def _configure_logging(verbose: bool, quiet: bool, models: bool = True) -> None:
    """hf_zsl at INFO (``--quiet``: WARNING, no bars; ``--verbose``: DEBUG); transformers' and datasets'
    own messages and bars only with ``--verbose`` (left alone when the command loads no ``models``)."""
    from . import logging

    logging.set_verbosity(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    if quiet:
        logging.disable_progress_bars()
    else:
        logging.enable_progress_bars()
    if not models:
        return
    import datasets
    import transformers

    if verbose:
        transformers.logging.set_verbosity_info()
        transformers.logging.enable_progress_bar()
    else:
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        datasets.disable_progress_bars()


def _run(args: argparse.Namespace) -> int:
    """Run the parsed command; its exit status."""
    from . import commands

    if args.command == "demo":
        commands.demo(args.model, args.json, args.chart, args.methods)
    elif args.command == "train":
        commands.train(
            args.method, args.protocol, protocol_shots(args.protocol, args.shots), args.seed, args.model,
            args.dataset, args.output_dir, overwrite=args.overwrite, preset=args.preset,
        )
    elif args.command == "eval":
        commands.evaluate_models(args.model, args.protocol, args.shots, args.seed, args.dataset, args.json)
    elif args.command == "predict":
        from .predict import predict

        succeeded = predict(
            args.model, args.paths, args.labels, args.labels_file, args.templates, args.top_k, args.batch_size, args.csv
        )
        return 0 if succeeded else 1
    elif args.command == "convert-open-clip":
        from .convert import open_clip_to_transformers

        print(open_clip_to_transformers(args.source, args.out, model_config=args.config, tokenizer=args.tokenizer))
    else:
        from .leaderboard import print_table

        print_table(args.results, csv_format=args.csv)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose, args.quiet, models=args.command != "table")
    try:
        return _run(args)
    except (ValueError, TypeError, KeyError, OSError) as error:
        print(f"hf-zsl {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
