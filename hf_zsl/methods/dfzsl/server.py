"""DFZSL's server side: the owner of the base-class images trains a classifier over CLIP features on them
and hands over only its weights (:class:`ServerClassifier`), all the data-free learner knows of those classes."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ...modeling.modeling_dfzsl import DFZSLModel
from ...modeling.modeling_linear_probe import LinearProbeModel
from ...protocols import TrainingView, relabel
from ...training import LabelledFeatures, keep_best_run
from .. import linear_probe
from .classifier import predict

# The servers `fit` can train on the seen-class images (`fit_data_free` takes any ServerClassifier).
SERVERS = ("class_means", "logistic_regression", "linear_probe")
# The official server: sklearn LogisticRegression(C=0.316, fit_intercept=False, max_iter=1000).
LOGISTIC_REGRESSION_C = 0.316


def check_server(kind: str) -> None:
    """Refuse a server kind not in :data:`SERVERS` (a ValueError naming them)."""
    if kind not in SERVERS:
        raise ValueError(f"Unknown DFZSL server {kind!r}; use one of {SERVERS}.")


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
    check_server(kind)
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
