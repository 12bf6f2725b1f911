"""Fitting DFZSL: :func:`fit` trains the server on a protocol's seen-class images, then runs the data-free
stages (:func:`fit_data_free`) from the server's weights and the class names alone."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import torch

from ...modeling.configuration_base import class_token_ids
from ...modeling.modeling_dfzsl import DFZSLModel
from ...modeling.prompting import name_token_ids
from ...protocols import TrainingView
from ...training import LabelledFeatures, on_training_device, run_settings, snapshot
from .classifier import SELECTION_METRICS, train_logit_adjusted_classifier
from .flpt import adapted_features, train_flpt
from .generator import synthesise, train_generator
from .server import ServerClassifier, train_server
from .settings import DFZSLSettings
from .simulator import fit_simulator, virtual_features


def class_split(view: TrainingView) -> tuple[list[str], list[str]]:
    """``(seen, new)`` class names of a GZSL or base-to-new training view."""
    if view.kind == "gzsl":
        return list(view.seen_classes), list(view.unseen_classes)
    if view.kind == "base2new":
        return list(view.base_classes), list(view.new_classes)
    raise ValueError(f"DFZSL learns new classes from seen ones: use a gzsl or base2new protocol, not {view.kind!r}.")


@on_training_device
def fit(model: DFZSLModel, view: TrainingView, settings: DFZSLSettings | None = None) -> dict:
    """Train the server on ``view``'s seen-class images, then DFZSL from the server alone.

    Returns:
        :func:`fit_data_free`'s record plus ``server`` (what the probe chose) and its seconds.
    """
    settings = settings or run_settings(DFZSLSettings(), view)
    seen, new = class_split(view)
    start = time.perf_counter()
    server, server_info = train_server(model, view, seen, settings.server)
    server_seconds = time.perf_counter() - start
    info = fit_data_free(model, server, new, settings, protocol=view.kind)
    info["stage_seconds"] = {"server": round(server_seconds, 3), **info["stage_seconds"]}
    info["server"] = server_info
    info["train_seconds"] = round(info["train_seconds"] + server_seconds, 3)
    return info


def _held_out_split(features: torch.Tensor, labels: torch.Tensor, fraction: float, seed: int):
    """Split rows into (train, held-out) with ``fraction`` of every class held out (seeded); a class keeps at
    least one training row, and one with two or more rows gives at least one held-out row."""
    generator = torch.Generator().manual_seed(seed)
    held = torch.zeros(len(labels), dtype=torch.bool)
    for label in labels.unique():
        rows = torch.nonzero(labels == label).flatten()
        rows = rows[torch.randperm(len(rows), generator=generator)]
        count = min(max(1, round(fraction * len(rows))), len(rows) - 1)
        held[rows[:count]] = True
    return (features[~held], labels[~held]), (features[held], labels[held])


@on_training_device
def fit_data_free(
    model: DFZSLModel,
    server: ServerClassifier,
    new_class_names: Sequence[str],
    settings: DFZSLSettings | None = None,
    protocol: str = "gzsl",
) -> dict:
    """DFZSL from a server classifier and class names only: no image of any class is read.

    Args:
        model: a DFZSL model (its context and residual are re-initialised).
        server: the base-class classifier (the only base-class input).
        new_class_names: the classes to learn without any data.
        settings: the stages' settings.
        protocol: what the model will be evaluated under, ``"gzsl"`` or ``"base2new"``: the classifier's
            epoch is chosen by that protocol's score on the held-out virtual / synthetic features (as the
            reference picks its GZSL and base-to-new epochs by H and by HM respectively).

    Returns:
        What each stage chose and measured: ``stage_seconds``, the simulator's ``kappa``, how many
        virtual features were ``trusted``, the ``classifier``'s selected epoch and held-out scores (S / U / H
        or base / new / HM, by ``protocol``), and ``train_seconds``.
    """
    settings = settings or DFZSLSettings()
    if protocol not in SELECTION_METRICS:
        raise ValueError(f"DFZSL is evaluated under a gzsl or base2new protocol, not {protocol!r}.")
    if isinstance(new_class_names, str):
        raise TypeError(f"new_class_names must be a list of class names, not the string {new_class_names!r}.")
    seen = list(server.class_names)
    new = list(new_class_names)
    overlap = sorted(set(seen) & set(new))
    if overlap or not new:
        raise ValueError(f"New classes must be non-empty and disjoint from the server's classes; both have {overlap}.")
    class_token_ids(model.tokenizer, seen + new)  # the names the classifier will record: checked before any stage
    dim = model.encoder.embed_dim
    if server.weights.shape[1] != dim:
        raise ValueError(f"The server's weights are {server.weights.shape[1]}-d; this model's CLIP features are {dim}-d.")
    restore = _restorer(model)
    try:
        return _run_stages(model, server, seen, new, settings, protocol)
    except Exception:
        restore()  # a fit that fails part-way (e.g. no trusted virtual sample) leaves the model as it was
        raise


def _restorer(model: DFZSLModel):
    """A function that puts back ``model``'s classifier (classes and rows), context and residual as they are now."""
    state = snapshot(model)
    names, seen = model.config.class_names, model.config.seen_class_names

    def restore() -> None:
        if names:
            model.set_classifier(list(names), state["class_weights"], list(seen or []))
        else:
            model.clear_classifier()
        model.load_state_dict(state, strict=False)

    return restore


def _run_stages(
    model: DFZSLModel, server: ServerClassifier, seen: list[str], new: list[str], settings: DFZSLSettings, protocol: str
) -> dict:
    """:func:`fit_data_free`'s four stages on checked input; returns its record."""
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 3)
        clock = now

    model.clear_classifier()
    model.reset_context()
    with torch.no_grad():
        prototypes = model.prompt_tuned_features(name_token_ids(model.tokenizer, seen)).float().cpu()

    # 1. Virtual domain modelling.
    simulator = dataclasses.replace(settings.simulator, seed=settings.seed)
    weights = server.weights.float().cpu()
    result = fit_simulator(weights, prototypes, simulator)
    features, labels = virtual_features(result, weights, simulator.virtual_per_class, seed=settings.seed)
    trusted = len(labels)
    (train_x, train_y), (held_x, held_y) = _held_out_split(features, labels, settings.held_out_fraction, settings.seed)
    lap("simulator")

    # 2. FLPT on the virtual features (seen classes only).
    flpt = dataclasses.replace(settings.flpt, seed=settings.seed)
    train_flpt(model, LabelledFeatures(train_x, train_y, seen), flpt)
    lap("flpt")

    # 3. Conditional generator on FLPT-adapted virtual features, conditioned on FLPT text features.
    # It trains on the model's device (the GPU when there is one); its output returns to the CPU.
    with torch.no_grad():
        conditions = model.prompt_tuned_features(name_token_ids(model.tokenizer, seen + new)).float()
        train_x, held_x = adapted_features(model, train_x), adapted_features(model, held_x)
    generator_settings = dataclasses.replace(settings.generator, seed=settings.seed + 1)
    generator = train_generator(train_x, train_y, conditions[: len(seen)], generator_settings)
    new_conditions = conditions[len(seen) :]
    synthetic_x, synthetic_y = synthesise(generator, new_conditions, settings.synthetic_per_class, seed=settings.seed + 2)
    per_class_held = max(1, round(settings.held_out_fraction * settings.synthetic_per_class))
    held_synthetic_x, held_synthetic_y = synthesise(generator, new_conditions, per_class_held, seed=settings.seed + 3)
    conditions, train_x, held_x, synthetic_x, held_synthetic_x = (
        tensor.cpu() for tensor in (conditions, train_x, held_x, synthetic_x, held_synthetic_x)
    )
    lap("generator")

    # 4. The logit-adjusted cosine classifier over all classes (small: it runs on the CPU).
    offset = len(seen)
    classifier = dataclasses.replace(settings.classifier, seed=settings.seed + 4)
    seen_ids, new_ids = list(range(len(seen))), list(range(offset, offset + len(new)))
    class_weights, chosen = train_logit_adjusted_classifier(
        conditions,
        torch.cat([train_x, synthetic_x]),
        torch.cat([train_y, synthetic_y + offset]),
        seen_ids,
        new_ids,
        classifier,
        selection=(torch.cat([held_x, held_synthetic_x]), torch.cat([held_y, held_synthetic_y + offset])),
        selection_metric=protocol,
    )
    model.set_classifier(seen + new, class_weights, seen)
    lap("classifier")

    model.config.simulator_kappa = float(result.kappa)
    return {
        "stage_seconds": seconds,
        "kappa": float(result.kappa),
        "virtual_features": {"drawn": simulator.virtual_per_class * len(seen), "trusted": trusted},
        "classifier": chosen,
        "train_seconds": round(sum(seconds.values()), 3),
    }
