"""DFZSL's development protocols: how its defaults were chosen without touching test data.

    python benchmarks/dfzsl_dev.py [--protocol gzsl|base2new] [--base embedded|FOLDER]
        [--grid '{"simulator": {"theta": 1.0}}' ...] [--seeds 1]

* ``gzsl``: only the *seen* classes of the shapes GZSL split; 16 of the 64 seen classes (seeded
  draw) play the unseen classes, training uses the other seen classes' training images, and scores
  come from the seen classes' validation images. With the embedded CLIP those 16 pairs were in
  pretraining (easier than the real unseen pairs); ``--base`` a development CLIP pretrained without
  them (``benchmarks/configs/pretrain_dev_clip.yaml``) makes them as new as the real unseen pairs.
* ``base2new``: only the *base* classes of the shapes base-to-new split (red, orange, yellow, green
  × shape), split again by the same rule, label-id order (red, orange → base; yellow, green → new,
  new colours as in the real split); training uses their training images, scores their validation
  images.
* ``base2new-fresh``: the same classes in a fresh draw of the world's images (data seed 1; the real
  split is drawn with seed 0), with larger scoring sets: the development base classes are
  scored on their 20 test images each, the development new classes (never trained on) on all 48 of
  their images (train, validation and test), so one image moves base by 0.36 and new by 0.15 points
  instead of 0.9.

Zero-shot CLIP is printed for reference. Each ``--grid`` entry is a JSON mapping of
:class:`hf_zsl.methods.dfzsl.DFZSLSettings` overrides; every entry runs once per seed. ``--report``
(base-to-new protocols) also prints the model with its classifier removed (FLPT alone, the "prompt
only" ablation) and where the synthetic new-class features lie: the mean cosine of each new class's
synthetic mean (and of its FLPT text feature) to the mean of its real development images, and the
share of synthetic features nearer a real *base*-class mean than to every real new-class mean.
"""

from __future__ import annotations

import argparse
import json
import math
import os

import datasets
import numpy as np
import torch
import torch.nn.functional as F

import hf_zsl
from hf_zsl import shapes
from hf_zsl.evaluation import evaluate_protocol
from hf_zsl.features import image_features
from hf_zsl.methods import dfzsl
from hf_zsl.methods.dfzsl.classifier import predict
from hf_zsl.modeling.prompting import name_token_ids
from hf_zsl.protocols import (
    BaseToNewProtocol,
    EvaluationProtocol,
    GZSLProtocol,
    relabel,
)
from hf_zsl.shapes.suite import task_data
from hf_zsl.training import LabelledFeatures, settings_from_dict

DEFAULT_GRID = [{"simulator": {"theta": theta}} for theta in (1.0, 0.3, 0.07)]


def _class_rows(split: datasets.Dataset, class_names: list[str], classes: list[str], labelled_over: list[str]) -> datasets.Dataset:
    """The rows of ``split`` (labelled over ``class_names``) whose class is in ``classes``, relabelled over ``labelled_over``."""
    ids = [class_names.index(c) for c in classes]
    return relabel(split.select(np.flatnonzero(np.isin(np.asarray(split["label"]), ids))), labelled_over)


def _validation_world(data: datasets.DatasetDict, class_names: list[str], classes: list[str]) -> datasets.DatasetDict:
    """``classes``' training and validation images (relabelled over them); their validation images are the test."""
    train, validation = (_class_rows(data[split], class_names, classes, classes) for split in ("train", "validation"))
    return datasets.DatasetDict(train=train, validation=validation, test=validation)


def development_protocol(pseudo_unseen: int = 16, seed: int = 0) -> GZSLProtocol:
    """GZSL over the shapes split's seen classes only, scored on their validation images."""
    full = shapes.gzsl(None, seed)
    seen = full.seen_classes
    pseudo = sorted(np.random.default_rng(seed).choice(seen, pseudo_unseen, replace=False).tolist())
    return GZSLProtocol(_validation_world(full.data, full.class_names, seen), pseudo)


def base_to_new_development_protocol() -> BaseToNewProtocol:
    """Base-to-new over the shapes split's base classes only, scored on their validation images."""
    full = shapes.base_to_new(None)
    return BaseToNewProtocol(_validation_world(task_data("colour_shape"), full.class_names, full.base_classes))


def fresh_base_to_new_development_protocol(data_seed: int = 1) -> BaseToNewProtocol:
    """Base-to-new over the base classes in another draw of the images, scored on every unused image."""
    if data_seed == 0:
        raise ValueError("data seed 0 is the draw the real base-to-new split is scored on; use another one.")
    full = shapes.base_to_new(None)
    data, names = task_data("colour_shape", data_seed), full.class_names
    development_base = full.base_classes[: math.ceil(len(full.base_classes) / 2)]  # checked below
    development_new = [c for c in full.base_classes if c not in development_base]

    def rows(split: str, classes: list[str]) -> datasets.Dataset:
        return _class_rows(data[split], names, classes, full.base_classes)

    test = datasets.concatenate_datasets(
        [rows("test", full.base_classes), rows("train", development_new), rows("validation", development_new)]
    )
    world = datasets.DatasetDict(
        train=rows("train", full.base_classes), validation=rows("validation", full.base_classes), test=test
    )
    protocol = BaseToNewProtocol(world)
    if protocol.base_classes != development_base:
        raise AssertionError("the development base classes must be the ones BaseToNewProtocol cuts off")
    return protocol


PROTOCOLS = {
    "gzsl": development_protocol,
    "base2new": base_to_new_development_protocol,
    "base2new-fresh": fresh_base_to_new_development_protocol,
}


def _unit_class_means(features: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return F.normalize(dfzsl.class_mean_weights(LabelledFeatures(features, labels, []), num_classes), dim=-1)


def synthetic_report(model, protocol: BaseToNewProtocol, synthetic: tuple[torch.Tensor, torch.Tensor]) -> dict:
    """Where the fit's synthetic new-class features `(N, d)` lie relative to the real development images."""
    means = {}
    for group, split in protocol.test_splits().items():
        with torch.no_grad():
            features = F.normalize(model.adapt_images(image_features(model, split, progress=False)).float(), dim=-1)
        means[group] = _unit_class_means(features, torch.tensor(split[protocol.label_column]), len(split.features[protocol.label_column].names))
    with torch.no_grad():
        text = F.normalize(model.prompt_tuned_features(name_token_ids(model.tokenizer, protocol.new_classes)).float(), dim=-1)
    features, labels = synthetic
    synthetic_means = _unit_class_means(features, labels, len(protocol.new_classes))
    nearest = predict(features, torch.cat([means["base"], means["new"]]))
    return {
        "cos(synthetic mean, real mean)": round(float((synthetic_means * means["new"]).sum(-1).mean()), 3),
        "cos(text, real mean)": round(float((text * means["new"]).sum(-1).mean()), 3),
        "synthetic nearer a base class": round(float((nearest < len(protocol.base_classes)).float().mean()), 3),
    }


def scores(record: dict) -> dict:
    return {k: round(100 * v, 1) for k, v in record.items() if isinstance(v, float)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", nargs="*", type=json.loads, default=DEFAULT_GRID)
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="gzsl")
    parser.add_argument("--base", default="embedded", help="CLIP to build on: 'embedded' or a folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--skip-zeroshot", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--report", action="store_true", help="base-to-new: prompt-only scores and synthetic features")
    args = parser.parse_args()
    os.environ.setdefault("HF_ZSL_PROGRESS", "0")
    torch.set_num_threads(args.threads)
    protocol: EvaluationProtocol = PROTOCOLS[args.protocol]()
    synthesised: list[tuple[torch.Tensor, torch.Tensor]] = []
    if args.report:
        if not isinstance(protocol, BaseToNewProtocol):
            parser.error("--report needs a base-to-new protocol (its new classes' real images are scored).")
        synthesise = dfzsl.fitting.synthesise

        def recording_synthesise(*positional, **keywords):
            synthesised.append(synthesise(*positional, **keywords))
            return synthesised[-1]

        dfzsl.fitting.synthesise = recording_synthesise
    if not args.skip_zeroshot:
        print("zeroshot", scores(evaluate_protocol(hf_zsl.build("zeroshot", args.base), protocol)), flush=True)
    for overrides in args.grid:
        for seed in args.seeds:
            model = hf_zsl.build("dfzsl", args.base)
            settings = settings_from_dict(dfzsl.DFZSLSettings(), {"seed": seed, **overrides})
            synthesised.clear()
            info = dfzsl.fit(model, protocol.training_view(), settings)
            record = scores(evaluate_protocol(model, protocol))
            print(json.dumps(overrides), f"seed {seed}", record, f"{info['train_seconds']:.0f} s", flush=True)
            if args.report:  # the first synthesis is the classifier's training set
                print("  synthetic features:", synthetic_report(model, protocol, synthesised[0]), flush=True)
                model.clear_classifier()
                print("  prompt only (FLPT):", scores(evaluate_protocol(model, protocol)), flush=True)


if __name__ == "__main__":
    main()
