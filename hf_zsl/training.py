"""Training glue shared by every trained method: ``transformers.Trainer`` over cached image features.

The image tower is frozen, so a training step never sees pixels: it reads L2-normalised features
from the feature cache (:mod:`hf_zsl.features`) and the label set's token ids, which are the same
for every batch. Whatever a method learns (context tokens, cache keys, class weights, heads) gets
gradients through the model's ``forward(input_ids, attention_mask, image_embeds, labels)``.
A method with a trainable image branch (``needs_pixel_values``) also gets each batch's images as
``pixel_values`` (:class:`ImageFeatureDataset`, :class:`PixelLabelSetCollator`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence

import datasets
import numpy as np
import torch
from accelerate import PartialState
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from .augmentation import augment
from .features import image_features, read_images
from .logging import DEBUG, get_verbosity, progress_bars_enabled
from .modeling.modeling_base import HfZslPreTrainedModel


OPTIMIZERS = ("adamw", "sgd")
PRECISIONS = ("fp32", "fp16", "bf16")
EPOCH_COSINE = "epoch_cosine"  # CoOp's (Dassl's) cosine stepped once per epoch after constant warm-up epochs


@dataclasses.dataclass
class FitSettings:
    """Optimisation settings of one training run (a method's presets, overridable per recipe).

    Attributes:
        optimizer: ``"adamw"`` (``Trainer``'s, with ``adam_epsilon``) or ``"sgd"`` (with ``momentum``).
        max_grad_norm: gradient clipping norm; 0 turns clipping off.
        lr_scheduler_type: a ``transformers`` scheduler name (stepped per step, ``warmup_steps``), or
            ``"epoch_cosine"``: ``warmup_epochs`` epochs at the constant ``warmup_lr``, then
            ``lr · (1 + cos(π (e − warmup_epochs) / epochs)) / 2`` for epoch ``e`` (Dassl's, CoOp's).
        drop_last: drop the last incomplete batch of an epoch when the data fill at least one batch.
        train_views: if positive, train on this many cached augmented views of each training image,
            epoch ``e`` reading view ``e mod train_views`` (a fresh draw per epoch while
            ``e < train_views``); 0: the plain cached features every epoch.
        crop_scale: smallest area fraction of the random resized crop of those views.
        precision: ``"fp32"``, or ``"fp16"`` / ``"bf16"`` mixed precision, used only on a GPU (the
            precision actually used is recorded in the fit's result).
    """

    epochs: int = 20
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 0
    lr_scheduler_type: str = "cosine"
    seed: int = 0
    logging_steps: int = 10
    optimizer: str = "adamw"
    momentum: float = 0.9
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    warmup_epochs: int = 0
    warmup_lr: float = 0.0
    drop_last: bool = False
    train_views: int = 0
    crop_scale: float = 0.5
    precision: str = "fp32"

    def __post_init__(self):
        for field in dataclasses.fields(self):
            check_finite(f"FitSettings.{field.name}", getattr(self, field.name))
        for name in ("epochs", "batch_size", "logging_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"FitSettings.{name} must be at least 1, got {getattr(self, name)}.")
        if self.learning_rate <= 0 or self.weight_decay < 0 or self.warmup_steps < 0:
            raise ValueError(
                "FitSettings needs learning_rate > 0, weight_decay >= 0 and warmup_steps >= 0; got "
                f"{self.learning_rate}, {self.weight_decay}, {self.warmup_steps}."
            )
        for name in ("momentum", "adam_epsilon", "max_grad_norm", "warmup_epochs", "warmup_lr", "train_views"):
            if getattr(self, name) < 0:
                raise ValueError(f"FitSettings.{name} must be at least 0, got {getattr(self, name)}.")
        if not 0 < self.crop_scale <= 1:
            raise ValueError(f"FitSettings.crop_scale must be in (0, 1], got {self.crop_scale}.")
        for name, choices in (("optimizer", OPTIMIZERS), ("precision", PRECISIONS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"FitSettings.{name} must be one of {list(choices)}, got {getattr(self, name)!r}.")


def extend_settings(settings: FitSettings, settings_class: type[FitSettings]) -> FitSettings:
    """``settings`` as a ``settings_class`` (a method's :class:`FitSettings` subclass): a plain
    :class:`FitSettings` keeps its values and takes the class's defaults for the method's own fields."""
    if isinstance(settings, settings_class):
        return settings
    return settings_class(**dataclasses.asdict(settings))


def check_finite(name: str, value) -> None:
    """Raise ``ValueError`` naming ``name`` if ``value`` is a NaN or infinite float (YAML's ``.nan``, ``.inf``)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"Settings field {name!r} must be a finite number, got {value}; give a number such as 1e-3.")


def settings_from_dict(defaults, values: dict):
    """``defaults`` (a settings dataclass *instance*: a method's own defaults) with a (YAML) mapping applied.

    Fields not in ``values`` keep their value in ``defaults``; fields holding a dataclass take a nested
    mapping, applied to that field's own value.

    Raises:
        TypeError: when ``values`` is not a mapping (pass ``{"epochs": 10}``, not a settings object), a
            nested field is not given a mapping, or a value's type is not its field's (``"ten"`` for epochs).
        ValueError: for a key that is not a field (the message lists the fields), or a NaN or infinite value.
    """
    if not isinstance(values, Mapping):
        raise TypeError(
            f"Settings overrides must be a mapping of field names to values, e.g. {{'epochs': 10}}; got {type(values).__name__}."
        )
    return _override(defaults, values)


def run_settings(defaults, view, overrides: dict | None = None):
    """The settings one fit trains with: a method's ``defaults`` seeded with the protocol's seed, then ``overrides``.

    A run of protocol seed ``s`` (``view.seed``, which also draws its support set) thus initialises and
    shuffles with seed ``s``; a ``seed`` in ``overrides`` (a recipe's ``settings:`` mapping) wins.
    """
    return settings_from_dict(dataclasses.replace(defaults, seed=view.seed), overrides or {})


def _override(defaults, values: dict):
    fields = {field.name for field in dataclasses.fields(defaults)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"Unknown {type(defaults).__name__} fields {unknown}; known: {sorted(fields)}.")
    resolved = {}
    for name, value in values.items():
        default = getattr(defaults, name)
        if dataclasses.is_dataclass(default):
            if not isinstance(value, Mapping):
                raise TypeError(
                    f"Settings field {name!r} takes a mapping of {type(default).__name__} fields, e.g. "
                    f"{{{name}: {{epochs: 30}}}}; got {value!r}."
                )
            resolved[name] = _override(default, value)
        else:
            _check_value_type(name, value, default)
            check_finite(name, value)
            resolved[name] = value
    return dataclasses.replace(defaults, **resolved)


def _check_value_type(name: str, value, default) -> None:
    """Raise ``TypeError`` unless ``value`` has the type of the field's ``default`` (an int is a valid float)."""
    if default is None or value is None:
        return
    expected = type(default)
    fits = isinstance(value, bool) if expected is bool else not isinstance(value, bool) and (
        isinstance(value, expected) or (expected is float and isinstance(value, int))
    )
    if not fits:
        raise TypeError(f"Settings field {name!r} takes {expected.__name__} values (default {default!r}); got {value!r}.")


@dataclasses.dataclass
class LabelledFeatures:
    """Cached image features of a split and their labels over ``class_names``.

    Attributes:
        features: `(num_images, dim)` L2-normalised image features.
        labels: `(num_images,)` class indices.
        class_names: the label set, in index order.
    """

    features: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]

    def __post_init__(self):
        if self.features.ndim != 2 or self.labels.shape != (len(self.features),):
            raise ValueError(
                f"LabelledFeatures needs features of shape (num_images, dim) and labels of shape (num_images,); got "
                f"{tuple(self.features.shape)} and {tuple(self.labels.shape)}."
            )
        if not torch.isfinite(self.features).all():
            raise ValueError(
                f"{int((~torch.isfinite(self.features)).sum())} image feature values are NaN or infinite; recompute "
                "them (a damaged cache entry or a diverged model)."
            )

    def to(self, device: torch.device | str) -> LabelledFeatures:
        """The same features and labels on ``device``."""
        return LabelledFeatures(self.features.to(device), self.labels.to(device), self.class_names)

    @classmethod
    def of(cls, model: HfZslPreTrainedModel, dataset, class_names: Sequence[str], label_column: str = "label"):
        return cls(image_features(model, dataset), torch.tensor(dataset[label_column]), list(class_names))


class FeatureDataset(torch.utils.data.Dataset):
    """Rows ``{"image_embeds": (dim,), "labels": ()}`` of a :class:`LabelledFeatures`."""

    def __init__(self, data: LabelledFeatures):
        self.data = data

    def __len__(self) -> int:
        return len(self.data.labels)

    def __getitem__(self, index: int) -> dict:
        return {"image_embeds": self.data.features[index], "labels": self.data.labels[index]}


class LabelSetCollator:
    """Stacks feature rows and adds the label set's token ids (tokenized once)."""

    def __init__(self, tokenizer, class_names: Sequence[str]):
        self.text = tokenizer(list(class_names), padding=True, return_tensors="pt")

    def __call__(self, rows: list[dict]) -> dict:
        return {
            "input_ids": self.text["input_ids"],
            "attention_mask": self.text["attention_mask"],
            "image_embeds": torch.stack([row["image_embeds"] for row in rows]),
            "labels": torch.stack([row["labels"] for row in rows]),
        }


class ImageFeatureDataset(torch.utils.data.Dataset):
    """Rows ``{"image": RGB PIL image, "image_embeds": (dim,), "labels": ()}`` of a dataset with cached features.

    Args:
        dataset: the images (decoded lazily, one row at a time).
        data: their cached features and labels (row ``i`` of ``data`` belongs to row ``i`` of ``dataset``).
        image_column: the image column of ``dataset``.
        augment_seed: if set, the image (not its cached feature, which stays the plain image's) is a
            fresh augmented view at every read (:func:`hf_zsl.augmentation.augment`; the ``n``-th read of
            row ``i`` is view ``n`` of row ``i``, so a seeded sampler gives the same pixels every run).
    """

    def __init__(
        self, dataset: datasets.Dataset, data: LabelledFeatures, image_column: str = "image", augment_seed: int | None = None
    ):
        if len(dataset) != len(data.labels):
            raise ValueError(f"{len(dataset)} images but {len(data.labels)} cached features.")
        self.dataset, self.data, self.image_column = dataset, data, image_column
        self.augment_seed, self.reads = augment_seed, np.zeros(len(dataset), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.data.labels)

    def __getitem__(self, index: int) -> dict:
        image = read_images(self.dataset, index, index + 1, self.image_column)[0]
        if self.augment_seed is not None:
            image = augment(image, self.augment_seed, int(self.reads[index]), index)
            self.reads[index] += 1
        return {"image": image, "image_embeds": self.data.features[index], "labels": self.data.labels[index]}


class PixelLabelSetCollator(LabelSetCollator):
    """:class:`LabelSetCollator` that also turns the rows' images into ``pixel_values`` (one processor call per batch)."""

    def __init__(self, tokenizer, image_processor, class_names: Sequence[str]):
        super().__init__(tokenizer, class_names)
        self.image_processor = image_processor

    def __call__(self, rows: list[dict]) -> dict:
        batch = super().__call__(rows)
        batch["pixel_values"] = self.image_processor(images=[row["image"] for row in rows], return_tensors="pt")["pixel_values"]
        return batch


class PenalisedTrainer(Trainer):
    """A :class:`Trainer` whose loss adds ``penalty(model)`` (e.g. a pull towards an initialisation) and
    ``auxiliary_loss(outputs, inputs)`` (e.g. a metric-learning term on the batch's embeddings), and
    that draws training batches from ``train_sampler`` when one is given (e.g. :class:`hf_zsl.sampling.PKSampler`),
    and schedules the learning rate by ``lr_lambda(step)`` (a multiplier, :class:`torch.optim.lr_scheduler.LambdaLR`)
    when one is given."""

    def __init__(
        self,
        *args,
        penalty: Callable[[torch.nn.Module], torch.Tensor] | None = None,
        auxiliary_loss: Callable[[object, dict], torch.Tensor] | None = None,
        train_sampler: torch.utils.data.Sampler | None = None,
        lr_lambda: Callable[[int], float] | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.penalty, self.auxiliary_loss, self.train_sampler = penalty, auxiliary_loss, train_sampler
        self.lr_lambda = lr_lambda

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if self.lr_lambda is None:
            return super().create_scheduler(num_training_steps, optimizer)
        if self.lr_scheduler is None:
            self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer or self.optimizer, self.lr_lambda)
        return self.lr_scheduler

    def _get_train_sampler(self, train_dataset=None):
        return self.train_sampler if self.train_sampler is not None else super()._get_train_sampler(train_dataset)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if self.penalty is not None:
            loss = loss + self.penalty(self.accelerator.unwrap_model(model))
        if self.auxiliary_loss is not None:
            loss = loss + self.auxiliary_loss(outputs, inputs)
        return (loss, outputs) if return_outputs else loss


def cpu_only() -> bool:
    """Whether training stays on the CPU: no CUDA device, or ``ACCELERATE_USE_CPU`` set (``accelerate
    launch --cpu``), which ``TrainingArguments`` also obeys."""
    return not torch.cuda.is_available() or os.environ.get("ACCELERATE_USE_CPU", "false").lower() in ("1", "true", "yes")


def distributed_state() -> PartialState:
    """This process's place in a (possibly multi-process) run.

    Without CUDA (:func:`cpu_only`) the state is built with ``cpu=True`` so that ``torchrun`` /
    ``accelerate launch`` with several processes really forms a gloo group (without it every
    process silently trains alone).
    """
    return PartialState(cpu=cpu_only())


def training_device() -> torch.device:
    """The device :class:`Trainer` trains on in this process: its GPU when CUDA is available (under
    ``accelerate launch``, the process's own), else the CPU."""
    return distributed_state().device


def on_training_device(fit: Callable) -> Callable:
    """Decorate a method's ``fit(model, ...)`` to move ``model`` to :func:`training_device` first.

    Trainer moves the model there anyway; moving it before anything runs lets the frozen image tower
    encode the support set on the GPU too, and keeps every step of the fit on one device. The fitted
    model stays there.
    """

    @functools.wraps(fit)
    def fit_on_training_device(model: torch.nn.Module, *args, **kwargs):
        model.to(training_device())
        return fit(model, *args, **kwargs)

    return fit_on_training_device


def training_arguments(settings: FitSettings, output_dir: str | None = None, **overrides) -> TrainingArguments:
    """``TrainingArguments`` for a feature-level run: no checkpoints, no reporting, seeded."""
    return TrainingArguments(
        # Nothing is written there (no checkpoints, no reports); Trainer only requires the path.
        output_dir=output_dir or os.path.join(tempfile.gettempdir(), "hfzsl-trainer"),
        num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        weight_decay=settings.weight_decay,
        warmup_steps=settings.warmup_steps,
        # the per-epoch cosine is a LambdaLR (optimisation_parts); Trainer's own scheduler is then unused
        lr_scheduler_type="constant" if settings.lr_scheduler_type == EPOCH_COSINE else settings.lr_scheduler_type,
        adam_epsilon=settings.adam_epsilon,
        max_grad_norm=settings.max_grad_norm,
        fp16=used_precision(settings) == "fp16",
        bf16=used_precision(settings) == "bf16",
        seed=settings.seed,
        data_seed=settings.seed,
        logging_steps=settings.logging_steps,
        save_strategy="no",
        use_cpu=cpu_only(),
        report_to=[],
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=os.environ.get("HF_ZSL_PROGRESS", "1") == "0" or not progress_bars_enabled(),
        # Every process gets a slice of the same global batch, so N processes take the optimisation
        # steps one process would (per_device_train_batch_size is the global batch).
        accelerator_config={"split_batches": True},
        **overrides,
    )


def used_precision(settings: FitSettings) -> str:
    """The precision a fit runs in: ``settings.precision`` on a GPU, ``"fp32"`` on the CPU."""
    return "fp32" if cpu_only() else settings.precision


def steps_per_epoch(num_rows: int, settings: FitSettings) -> int:
    """Optimisation steps in one epoch over ``num_rows`` rows (Dassl's ``drop_last`` rule under ``drop_last``)."""
    if settings.drop_last and num_rows >= settings.batch_size:
        return num_rows // settings.batch_size
    return max(1, math.ceil(num_rows / settings.batch_size))


def epoch_cosine(settings: FitSettings, num_rows: int) -> Callable[[int], float]:
    """The ``"epoch_cosine"`` multiplier of the learning rate at optimisation step ``step``.

    Epoch ``e`` (``step // steps_per_epoch``) runs at ``warmup_lr`` while ``e < warmup_epochs``, then at
    ``learning_rate · (1 + cos(π (e − warmup_epochs) / epochs)) / 2`` (Dassl's ``CosineAnnealingLR(T_max=epochs)``
    stepped per epoch behind a constant warm-up, which never reaches 0).
    """
    per_epoch = steps_per_epoch(num_rows, settings)

    def multiplier(step: int) -> float:
        epoch = step // per_epoch
        if epoch < settings.warmup_epochs:
            return settings.warmup_lr / settings.learning_rate
        return 0.5 * (1 + math.cos(math.pi * (epoch - settings.warmup_epochs) / settings.epochs))

    return multiplier


def optimisation_parts(model: torch.nn.Module, settings: FitSettings, num_rows: int) -> dict:
    """The :class:`PenalisedTrainer` arguments that ``settings`` need beyond ``TrainingArguments``: an SGD
    optimiser (``optimizers``) and the per-epoch cosine (``lr_lambda``); nothing for AdamW + an HF schedule."""
    parts = {}
    if settings.optimizer == "sgd":
        parameters = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.SGD(
            parameters, lr=settings.learning_rate, momentum=settings.momentum, weight_decay=settings.weight_decay
        )
        parts["optimizers"] = (optimizer, None)
    if settings.lr_scheduler_type == EPOCH_COSINE:
        parts["lr_lambda"] = epoch_cosine(settings, num_rows)
    return parts


class EpochViews(torch.utils.data.Dataset):
    """Rows ``{"image_embeds": (dim,), "labels": ()}`` of cached augmented views `(views, images, dim)`:
    during epoch ``e`` (set by :class:`EpochCounter`) row ``i`` is view ``e mod views`` of image ``i``."""

    def __init__(self, views: torch.Tensor, labels: torch.Tensor):
        if views.ndim != 3 or views.shape[1] != len(labels):
            raise ValueError(f"EpochViews needs views (views, images, dim) for {len(labels)} labels; got {tuple(views.shape)}.")
        self.views, self.labels, self.epoch = views, labels, 0

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {"image_embeds": self.views[self.epoch % len(self.views), index], "labels": self.labels[index]}


class EpochCounter(TrainerCallback):
    """Tells an :class:`EpochViews` which epoch begins (before that epoch's first batch is read)."""

    def __init__(self, dataset: EpochViews):
        self.dataset, self.epochs = dataset, 0

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.dataset.epoch, self.epochs = self.epochs, self.epochs + 1


def augmented_training_views(model: HfZslPreTrainedModel, dataset: datasets.Dataset, settings: FitSettings) -> torch.Tensor | None:
    """``settings.train_views`` cached augmented views of ``dataset``'s images (crop scale ``settings.crop_scale``,
    seeded with ``settings.seed``), `(train_views, images, dim)`, for :func:`train_on_features`'s ``views``;
    ``None`` when ``train_views`` is 0."""
    if not settings.train_views:
        return None
    return image_features(
        model, dataset, progress=False, augment_views=settings.train_views, augment_seed=settings.seed,
        crop_scale=settings.crop_scale,
    )


def train_on_features(
    model: HfZslPreTrainedModel,
    train: LabelledFeatures,
    settings: FitSettings,
    penalty: Callable[[torch.nn.Module], torch.Tensor] | None = None,
    output_dir: str | None = None,
    views: torch.Tensor | None = None,
) -> float:
    """Train ``model``'s learnable parameters on cached features with :class:`Trainer`; returns seconds.

    Args:
        views: `(views, images, dim)` augmented features of ``train``'s images: epoch ``e`` trains on
            view ``e mod views`` (:class:`EpochViews`) instead of ``train.features``.
    """
    dataset = FeatureDataset(train) if views is None else EpochViews(views, train.labels)
    drop_last = settings.drop_last and len(dataset) >= settings.batch_size
    _, seconds = run_trainer(
        model,
        training_arguments(settings, output_dir, dataloader_drop_last=drop_last),
        dataset,
        LabelSetCollator(model.tokenizer, train.class_names),
        penalty=penalty,
        callbacks=None if views is None else [EpochCounter(dataset)],
        **optimisation_parts(model, settings, len(dataset)),
    )
    return seconds


def run_trainer(
    model: HfZslPreTrainedModel, args: TrainingArguments, dataset, collator, **trainer_kwargs
) -> tuple[PenalisedTrainer, float]:
    """Train ``model``'s learnable parameters with a :class:`PenalisedTrainer` (``trainer_kwargs``: its
    ``penalty``, ``auxiliary_loss``, ``train_sampler``, ``optimizers``, ...); the model is left in eval mode.

    Returns:
        The trainer (``trainer.state.log_history`` holds the logged losses) and the training seconds.
    """
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(f"{type(model).__name__} has no trainable parameters.")
    model.train()
    trainer = PenalisedTrainer(model=model, args=args, train_dataset=dataset, data_collator=collator, **trainer_kwargs)
    if get_verbosity() > DEBUG:
        quiet_losses(trainer)
    result = trainer.train()
    check_synchronised(model, trainer.accelerator)
    model.eval()
    return trainer, float(result.metrics["train_runtime"])


class _BarOnlyProgressCallback(ProgressCallback):
    """Trainer's progress bar without the per-step loss dicts it writes under the bar."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        pass


def quiet_losses(trainer: Trainer) -> None:
    """Stop ``trainer`` printing its per-step loss dicts (kept in ``trainer.state.log_history``); the
    progress bar stays. hf_zsl does this below ``DEBUG`` verbosity (the command line's ``--verbose``)."""
    trainer.remove_callback(PrinterCallback)
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(_BarOnlyProgressCallback)


def check_synchronised(model: torch.nn.Module, accelerator) -> None:
    """Raise if the processes of a distributed run ended with different learned weights.

    Guards the known trap where a model used before ``train()`` (e.g. ``trainer.evaluate()``) stays
    unwrapped, so gradients are silently not all-reduced and every process trains alone.
    """
    if accelerator.num_processes == 1:
        return
    learned = [p.detach().double().sum() for name, p in model.named_parameters() if not name.startswith("encoder.")]
    checksum = torch.stack(learned).sum().reshape(1).to(accelerator.device)
    gathered = accelerator.gather(checksum)
    if not torch.allclose(gathered, gathered[0].expand_as(gathered), rtol=0, atol=1e-6):
        raise RuntimeError(
            f"Distributed training ended with different weights on different processes (checksums "
            f"{gathered.tolist()}): gradients were not synchronised. Do not use the model before train()."
        )


def accuracy_on_features(model: HfZslPreTrainedModel, data: LabelledFeatures) -> float:
    """Top-1 accuracy of ``model`` on cached features over their label set."""
    text = model.tokenizer(data.class_names, padding=True, return_tensors="pt").to(model.device)
    with torch.inference_mode():
        logits = model(**text, image_embeds=data.features.to(model.device)).logits_per_image
    return float((logits.argmax(-1).cpu() == data.labels).float().mean())


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the learned (non-base) state, to restore the best of several runs."""
    return {k: v.detach().clone() for k, v in model.state_dict().items() if not k.startswith("encoder.")}


def keep_best_run(
    model: torch.nn.Module, candidates: Sequence, run: Callable[[object], float], score: Callable[[], float]
) -> tuple[object, float, float]:
    """Train once per candidate setting and keep the learned state that validates best.

    Args:
        candidates: the settings to try (a grid of one hyper-parameter).
        run: ``run(candidate)`` re-initialises what is learned, trains, and returns its seconds.
        score: validation accuracy of the model as it stands.

    Returns:
        ``(best candidate, its validation score, total training seconds)``; the model holds the
        best run's learned state.
    """
    scores, states, seconds = [], [], 0.0
    for candidate in candidates:
        seconds += run(candidate)
        scores.append(score())
        states.append(snapshot(model))
    best = best_index(scores)
    model.load_state_dict(states[best], strict=False)
    return candidates[best], scores[best], seconds


def best_index(scores: Sequence[float]) -> int:
    """Index of the best validation score (the first on ties, so smaller grids win ties)."""
    return int(np.argmax(np.asarray(scores)))
