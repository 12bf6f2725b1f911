"""A data-free check of DFZSL's generator: can it synthesise seen classes it was not trained on?

    python benchmarks/dfzsl_generator_check.py [--learning-rates 3e-5 3e-4] [--epochs 12] [--held-out 16]

On the shapes GZSL split: the server probe and the simulator give virtual features of every seen
class; the generator is trained on all but ``--held-out`` of them and synthesises the held-out
classes from their text conditions. Printed per learning rate: how often a synthetic feature is
nearest its own class's virtual mean (among the held-out classes), its mean cosine to it, and the
spread (mean cosine to the class's own synthetic mean) against the virtual features'. No test (or
validation) image is read after the server; this is how DFZSL's generator learning rate was chosen.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F

import hf_zsl
from hf_zsl import shapes
from hf_zsl.methods import dfzsl
from hf_zsl.methods.dfzsl.generator import GeneratorSettings, synthesise, train_generator
from hf_zsl.methods.dfzsl.simulator import SimulatorSettings, fit_simulator, virtual_features
from hf_zsl.modeling.prompting import name_token_ids


def class_means(features: torch.Tensor, labels: torch.Tensor, classes: range) -> torch.Tensor:
    """`(len(classes), d)` normalised means of each class's rows."""
    return F.normalize(torch.stack([features[labels == c].mean(0) for c in classes]), dim=-1)


def spread(features: torch.Tensor, labels: torch.Tensor, classes: range) -> float:
    """Mean cosine of each row to its own class mean (the mean resultant length)."""
    means = class_means(features, labels, classes)
    return float(torch.stack([(features[labels == c] @ means[i]).mean() for i, c in enumerate(classes)]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learning-rates", type=float, nargs="+", default=[3e-5, 3e-4])
    parser.add_argument("--epochs", type=int, default=GeneratorSettings.epochs)
    parser.add_argument("--held-out", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("HF_ZSL_PROGRESS", "0")
    torch.set_num_threads(args.threads)

    protocol = shapes.gzsl(None, args.seed)
    model = hf_zsl.build("dfzsl", "embedded")
    seen, _ = dfzsl.class_split(protocol.training_view())
    server, _ = dfzsl.train_server(model, protocol.training_view(), seen)
    ids = name_token_ids(model.tokenizer, seen)
    with torch.no_grad():
        conditions = model.prompt_tuned_features(ids).float()
    simulator = fit_simulator(server.weights, conditions, SimulatorSettings(seed=args.seed))
    features, labels = virtual_features(simulator, server.weights, 100, seed=args.seed)

    trained = len(seen) - args.held_out
    held = range(trained, len(seen))
    targets = class_means(features, labels, held)
    for rate in args.learning_rates:
        start = time.perf_counter()
        mask = labels < trained
        generator = train_generator(
            features[mask], labels[mask], conditions[:trained], GeneratorSettings(learning_rate=rate, epochs=args.epochs, seed=args.seed + 1)
        )
        synthetic, synthetic_labels = synthesise(generator, conditions[trained:], 100, seed=args.seed + 2)
        similarity = synthetic @ targets.T
        accuracy = float((similarity.argmax(-1) == synthetic_labels).float().mean())
        own = float(similarity[torch.arange(len(synthetic_labels)), synthetic_labels].mean())
        print(
            f"lr {rate:g}, {args.epochs} epochs: nearest own class {100 * accuracy:.1f}% of {args.held_out} held-out classes, "
            f"cos to own virtual mean {own:.3f}, spread {spread(synthetic, synthetic_labels, range(args.held_out)):.3f} "
            f"(virtual {spread(features, labels, held):.3f}), {time.perf_counter() - start:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
