"""Training glue shared by every trained method: ``transformers.Trainer`` over cached image features.

The image tower is frozen, so a training step never sees pixels: it reads L2-normalised features
from the feature cache (:mod:`hf_zsl.features`) and the label set's token ids, which are the same
for every batch. Whatever a method learns (context tokens, cache keys, class weights, heads) gets
gradients through the model's ``forward(input_ids, attention_mask, image_embeds, labels)``.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Sequence

import numpy as np
import torch
from accelerate import PartialState
from transformers import Trainer, TrainingArguments

from .features import image_features
from .modeling.modeling_base import HfZslPreTrainedModel


@dataclasses.dataclass
class FitSettings:
    """Optimisation settings of one training run (a method's defaults, overridable per recipe)."""

    epochs: int = 20
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 0
    lr_scheduler_type: str = "cosine"
    seed: int = 0
    logging_steps: int = 10


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

    @classmethod
    def of(cls, model: HfZslPreTrainedModel, dataset, class_names: Sequence[str], label_column: str = "label"):
        return cls(image_features(model, dataset, progress=False), torch.tensor(dataset[label_column]), list(class_names))


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


class PenalisedTrainer(Trainer):
    """A :class:`Trainer` whose loss adds ``penalty(model)`` (e.g. a pull towards an initialisation)."""

    def __init__(self, *args, penalty: Callable[[torch.nn.Module], torch.Tensor] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.penalty = penalty

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if self.penalty is not None:
            loss = loss + self.penalty(self.accelerator.unwrap_model(model))
        return (loss, outputs) if return_outputs else loss


def distributed_state() -> PartialState:
    """This process's place in a (possibly multi-process) run.

    On machines without CUDA the state is built with ``cpu=True`` so that ``torchrun`` /
    ``accelerate launch`` with several processes really forms a gloo group (without it every
    process silently trains alone).
    """
    return PartialState(cpu=not torch.cuda.is_available())


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
        lr_scheduler_type=settings.lr_scheduler_type,
        seed=settings.seed,
        data_seed=settings.seed,
        logging_steps=settings.logging_steps,
        save_strategy="no",
        use_cpu=not torch.cuda.is_available(),
        report_to=[],
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=os.environ.get("HF_ZSL_PROGRESS", "1") == "0",
        # Every process gets a slice of the same global batch, so N processes take the optimisation
        # steps one process would (per_device_train_batch_size is the global batch).
        accelerator_config={"split_batches": True},
        **overrides,
    )


def train_on_features(
    model: HfZslPreTrainedModel,
    train: LabelledFeatures,
    settings: FitSettings,
    penalty: Callable[[torch.nn.Module], torch.Tensor] | None = None,
    output_dir: str | None = None,
) -> float:
    """Train ``model``'s learnable parameters on cached features with :class:`Trainer`; returns seconds."""
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(f"{type(model).__name__} has no trainable parameters.")
    model.train()
    trainer = PenalisedTrainer(
        model=model,
        args=training_arguments(settings, output_dir),
        train_dataset=FeatureDataset(train),
        data_collator=LabelSetCollator(model.tokenizer, train.class_names),
        penalty=penalty,
    )
    result = trainer.train()
    check_synchronised(model, trainer.accelerator)
    model.eval()
    return float(result.metrics["train_runtime"])


def check_synchronised(model: torch.nn.Module, accelerator) -> None:
    """Raise if the processes of a distributed run ended with different learned weights.

    Guards the known trap where a model used before ``train()`` (e.g. ``trainer.evaluate()``) stays
    unwrapped, so gradients are silently not all-reduced and every process trains alone.
    """
    if accelerator.num_processes == 1:
        return
    learned = [p.detach().double().sum() for name, p in model.named_parameters() if not name.startswith("clip.")]
    checksum = torch.stack(learned).sum().reshape(1).to(accelerator.device)
    gathered = accelerator.gather(checksum)
    if not torch.allclose(gathered, gathered[0].expand_as(gathered), rtol=0, atol=1e-6):
        raise RuntimeError(
            f"Distributed training ended with different weights on different processes (checksums "
            f"{gathered.tolist()}): gradients were not synchronised. Do not use the model before train()."
        )


def accuracy_on_features(model: HfZslPreTrainedModel, data: LabelledFeatures) -> float:
    """Top-1 accuracy of ``model`` on cached features over their label set."""
    text = model.tokenizer(data.class_names, padding=True, return_tensors="pt")
    with torch.inference_mode():
        logits = model(**text, image_embeds=data.features.to(model.device)).logits_per_image
    return float((logits.argmax(-1).cpu() == data.labels).float().mean())


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the learned (non-base) state, to restore the best of several runs."""
    return {k: v.detach().clone() for k, v in model.state_dict().items() if not k.startswith("clip.")}


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
