"""Fitting DFZSL (Tang et al., *Data-Free Generalized Zero-Shot Learning*, AAAI 2024).

Two sides, kept apart:

* the **server** (:func:`train_server`): the owner of the base-class images trains a classifier on
  them — a linear probe over CLIP features, queried as a cosine classifier — and hands over only
  that (:class:`ServerClassifier`);
* the **data-free learner** (:func:`fit_data_free`), which gets the server classifier and the class
  names, never an image:

  1. virtual domain modelling: a von Mises–Fisher per seen class, fitted so its samples get the
     server's logits, then sampled and filtered to the samples the server classifies correctly;
  2. FLPT: the context tokens and the ``t2i`` residual trained on the virtual features;
  3. a conditional generator (TF-VAEGAN-style) trained on the virtual features, conditioned on the
     FLPT text features, synthesises new-class features;
  4. the logit-adjusted cosine classifier over all classes, trained on virtual ∪ synthetic features,
     its epoch chosen on held-out virtual / synthetic features (never on test data).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..modeling.configuration_base import class_token_ids
from ..modeling.modeling_dfzsl import DFZSLModel
from ..modeling.modeling_linear_probe import LinearProbeModel
from ..modeling.prompting import name_token_ids
from ..presets import EMBEDDED, Presets
from ..protocols import TrainingView, relabel
from ..training import (
    FitSettings,
    LabelledFeatures,
    keep_best_run,
    on_training_device,
    run_settings,
    snapshot,
    train_on_features,
)
from . import linear_probe
from .dfzsl_classifier import SELECTION_METRICS, ClassifierSettings, predict, train_logit_adjusted_classifier
from .dfzsl_generator import GeneratorSettings, synthesise, train_generator
from .dfzsl_simulator import SimulatorSettings, fit_simulator, virtual_features

# FLPT: the official AdamW lr 3e-3 (torch's default weight decay 0.01), one epoch over the virtual
# features, no schedule; batch 16 instead of 4 (each step re-encodes every seen-class prompt, which
# dominates on CPU — see the card).
# The generator runs far fewer steps on CPU than the reference's 120 epochs at 3e-5. The data-free check
# (benchmarks/dfzsl_generator_check.py: synthesise 16 seen classes held out of its training) put
# 73.4% / 89.7% of their synthetic features nearest their own class at lr 3e-5 / 3e-4 with 12 epochs,
# and 94.5% / 96.6% / 95.7% at 3e-4 with 30 / 60 / 120 epochs, so DFZSL trains it at 3e-4 for 60
# epochs (about 4 minutes on one CPU thread for the shapes GZSL split).
GENERATOR_LEARNING_RATE = 3e-4
GENERATOR_EPOCHS = 60
# The servers `fit` can train on the seen-class images (`fit_data_free` takes any ServerClassifier).
SERVERS = ("class_means", "logistic_regression", "linear_probe")
# The official server: sklearn LogisticRegression(C=0.316, fit_intercept=False, max_iter=1000).
LOGISTIC_REGRESSION_C = 0.316
FLPT_DEFAULTS = FitSettings(epochs=1, batch_size=16, learning_rate=3e-3, weight_decay=0.01, lr_scheduler_type="constant")


def _check_server(kind: str) -> None:
    if kind not in SERVERS:
        raise ValueError(f"Unknown DFZSL server {kind!r}; use one of {SERVERS}.")


@dataclasses.dataclass
class DFZSLSettings:
    """Settings of the data-free stages (defaults: the official values scaled to CPU; see the card).

    Attributes:
        simulator: the vMF simulator; ``virtual_per_class`` is how many virtual features each seen class gets.
        flpt: FLPT's optimisation.
        generator: the conditional feature generator.
        classifier: the logit-adjusted cosine classifier.
        synthetic_per_class: synthetic features per new class for the classifier.
        held_out_fraction: share of the virtual features (and a matching synthetic draw) kept out of
            training to choose the classifier's epoch.
        server: the classifier :func:`fit` trains as the server (one of :data:`SERVERS`; the data-free
            stages take whatever server they are given): ``"class_means"`` (default, chosen on the
            development protocols — see the card), ``"logistic_regression"`` (the official server) or
            ``"linear_probe"`` (hf_zsl's few-shot probe).
        seed: seeds every stage (the simulator, generator and classifier get ``seed``, ``seed + 1``, ...).
    """

    simulator: SimulatorSettings = dataclasses.field(default_factory=SimulatorSettings)
    flpt: FitSettings = dataclasses.field(default_factory=lambda: dataclasses.replace(FLPT_DEFAULTS))
    generator: GeneratorSettings = dataclasses.field(
        default_factory=lambda: GeneratorSettings(learning_rate=GENERATOR_LEARNING_RATE, epochs=GENERATOR_EPOCHS)
    )
    classifier: ClassifierSettings = dataclasses.field(default_factory=ClassifierSettings)
    synthetic_per_class: int = 300
    held_out_fraction: float = 0.2
    server: str = "class_means"
    seed: int = 0

    def __post_init__(self):
        _check_server(self.server)
        if not 0.0 < self.held_out_fraction < 1.0:
            raise ValueError(f"held_out_fraction must lie strictly between 0 and 1, got {self.held_out_fraction}.")
        if self.synthetic_per_class < 1:
            raise ValueError(f"synthetic_per_class must be at least 1, got {self.synthetic_per_class}.")


PRESETS = Presets({EMBEDDED: DFZSLSettings()})


@dataclasses.dataclass
class ServerClassifier:
    """All the data-free learner knows of the base classes: a trained classifier's weights.

    Queried like the official server, as a cosine classifier ``cos(x, w_c) / T`` (the simulator's
    ``temperature``, 1.0 in the official code).

    Attributes:
        class_names: the base classes, in row order.
        weights: `(num_classes, dim)` classifier rows.
    """

    class_names: list[str]
    weights: torch.Tensor

    def __post_init__(self):
        names = self.class_names
        if isinstance(names, str) or not all(isinstance(name, str) and name.strip() for name in names):
            raise TypeError(f"class_names must be a list of non-empty class-name strings, got {names!r}.")
        if len(set(names)) != len(names) or len(names) < 2:
            raise ValueError("A server classifier needs at least two distinct class names.")
        if not isinstance(self.weights, torch.Tensor):
            raise TypeError(
                f"weights must be a torch.Tensor of shape ({len(names)}, dim), got {type(self.weights).__name__}; "
                "wrap it with torch.as_tensor."
            )
        if self.weights.ndim != 2 or self.weights.shape[0] != len(names) or self.weights.shape[1] == 0:
            raise ValueError(
                f"weights must have shape ({len(names)}, dim), one row per class; got {tuple(self.weights.shape)}."
            )
        bad = [name for name, row in zip(names, self.weights) if not torch.isfinite(row).all() or not row.any()]
        if bad:
            raise ValueError(f"The weight rows of classes {bad[:5]} are zero or not finite; every class needs a direction.")


def class_split(view: TrainingView) -> tuple[list[str], list[str]]:
    """``(seen, new)`` class names of a GZSL or base-to-new training view."""
    if view.kind == "gzsl":
        return list(view.seen_classes), list(view.unseen_classes)
    if view.kind == "base2new":
        return list(view.base_classes), list(view.new_classes)
    raise ValueError(f"DFZSL learns new classes from seen ones: use a gzsl or base2new protocol, not {view.kind!r}.")


class _SeenClassView:
    """A training view restricted to (and labelled over) the seen classes: the server's data (and the protocol's seed)."""

    def __init__(self, view: TrainingView, seen: Sequence[str]):
        self.train_class_names, self.label_column, self.seed = list(seen), view.label_column, view.seed
        self.train = relabel(view.train, self.train_class_names, view.label_column)
        self.val = None if view.val is None else relabel(view.val, self.train_class_names, view.label_column)


def class_mean_weights(data: LabelledFeatures, num_classes: int) -> torch.Tensor:
    """Nearest-class-mean server rows: the mean feature of each class, `(num_classes, dim)` (normalised by the server)."""
    counts = torch.bincount(data.labels, minlength=num_classes)
    if (counts == 0).any():
        raise ValueError(f"The server has no training image of classes {torch.nonzero(counts == 0).flatten().tolist()}.")
    sums = torch.zeros(num_classes, data.features.shape[1], dtype=torch.float64).index_add_(0, data.labels, data.features.double())
    return (sums / counts[:, None]).float()


def logistic_regression_weights(
    data: LabelledFeatures, num_classes: int, c: float = LOGISTIC_REGRESSION_C, max_iter: int = 1000
) -> torch.Tensor:
    """The official server: multinomial logistic regression without intercept, `(num_classes, dim)` rows.

    Minimises ``Σ_i CE(W x_i, y_i) + ||W||² / (2c)`` (scikit-learn's objective for ``C = c``) with L-BFGS
    in float64 from ``W = 0``.
    """
    features, labels = data.features.double(), data.labels
    weights = torch.zeros(num_classes, features.shape[1], dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS(
        [weights], max_iter=max_iter, tolerance_grad=1e-6, tolerance_change=1e-12, line_search_fn="strong_wolfe"
    )

    def objective() -> torch.Tensor:
        optimiser.zero_grad()
        loss = F.cross_entropy(features @ weights.T, labels, reduction="sum") + weights.pow(2).sum() / (2 * c)
        loss.backward()
        return loss

    optimiser.step(objective)
    return weights.detach().float()


def _probe_server(model: DFZSLModel, seen_view: _SeenClassView) -> tuple[torch.Tensor, dict]:
    """hf_zsl's linear probe, started at zero and at the text features, the better on ``seen_view.val`` kept."""
    probe = LinearProbeModel.from_base(
        model.encoder.model, model.tokenizer, model.image_processor, model.config.base_model_name_or_path,
        class_names=seen_view.train_class_names,
    )
    runs: dict[bool, dict] = {}

    def run(init_from_text: bool) -> float:
        probe.config.init_from_text = init_from_text
        runs[init_from_text] = {**linear_probe.fit(probe, seen_view), "init_from_text": init_from_text}
        return runs[init_from_text]["train_seconds"]

    def score() -> float:
        return runs[probe.config.init_from_text]["val_accuracy"]

    chosen, _, _ = keep_best_run(probe, (False, True), run, score)
    probe.config.init_from_text = chosen
    return probe.class_weights.detach().float().cpu(), runs[chosen]


def train_server(
    model: DFZSLModel, view: TrainingView, seen: Sequence[str], kind: str = "class_means"
) -> tuple[ServerClassifier, dict]:
    """The server's side: a classifier over CLIP features fitted on the real seen-class images of ``view``.

    Args:
        kind: ``"class_means"`` (rows = normalised mean feature of each class), ``"logistic_regression"``
            (the official server, :func:`logistic_regression_weights`) or ``"linear_probe"`` (hf_zsl's
            probe, zero- or text-initialised, chosen on ``view.val``).

    Returns:
        ``(server, info)``: ``info`` has ``server`` (the kind), ``train_seconds`` and, when ``view`` has
        validation images, the server's ``val_accuracy`` as a cosine classifier. Only the server's own
        images are read; the data-free stages never see them.
    """
    _check_server(kind)
    start = time.perf_counter()
    seen_view = _SeenClassView(view, seen)
    info: dict = {"server": kind}
    if kind == "linear_probe":
        weights, probe_info = _probe_server(model, seen_view)
        info.update(probe_info)
    else:
        train = LabelledFeatures.of(model, seen_view.train, seen, seen_view.label_column)
        fitter = class_mean_weights if kind == "class_means" else logistic_regression_weights
        weights = fitter(train, len(seen))
    server = ServerClassifier(list(seen), F.normalize(weights, dim=-1))
    if seen_view.val is not None:
        val = LabelledFeatures.of(model, seen_view.val, seen, seen_view.label_column)
        info["val_accuracy"] = float((predict(val.features, server.weights) == val.labels).float().mean())
    info["train_seconds"] = round(time.perf_counter() - start, 3)
    return server, info


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


def _adapted(model: DFZSLModel, features: torch.Tensor) -> torch.Tensor:
    """FLPT-adapted, re-normalised features ``normalize(x + λ·r)``, `(n, dim)` on the model's device."""
    return F.normalize(model.adapt_images(features.to(model.device)).float(), dim=-1)


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
    train_on_features(model, LabelledFeatures(train_x, train_y, seen), flpt)
    lap("flpt")

    # 3. Conditional generator on FLPT-adapted virtual features, conditioned on FLPT text features.
    # It trains on the model's device (the GPU when there is one); its output returns to the CPU.
    with torch.no_grad():
        conditions = model.prompt_tuned_features(name_token_ids(model.tokenizer, seen + new)).float()
        train_x, held_x = _adapted(model, train_x), _adapted(model, held_x)
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
