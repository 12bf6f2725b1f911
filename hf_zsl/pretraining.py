"""Contrastive pretraining of the embedded tiny CLIP and tiny SigLIP on the shapes world (DESIGN §5).

A small dual encoder of :attr:`PretrainConfig.family` learns from image–caption pairs of
:func:`hf_zsl.shapes.pretraining_pairs` through :class:`transformers.Trainer`, with the family's own
loss (``return_loss=True``):

* ``"clip"``: :class:`transformers.CLIPModel` (:func:`hf_zsl.tiny.tiny_clip_config`), the offline
  CLIP BPE tokenizer, CLIP's symmetric softmax contrastive loss; captions padded to the batch's longest.
* ``"siglip"``: :class:`transformers.SiglipModel` (:func:`hf_zsl.tiny.tiny_siglip_config`), an offline
  SentencePiece tokenizer, SigLIP's pairwise sigmoid loss with the paper's initial logit scale
  ``log 10`` and bias ``-10``; captions padded to 64 tokens, as the stock pipeline pads labels
  (SigLIP pools the last position, so padding is part of a text's embedding).

Both tokenizers are built over :func:`hf_zsl.shapes.shapes_vocabulary`. Everything is seeded: the
same :class:`PretrainConfig` on the same machine and thread count gives the same weights.

The recipe ``recipes/pretrain_tiny_clip.py`` reads a YAML file into a :class:`PretrainConfig`
and calls :func:`pretrain`; in Python::

    from hf_zsl.pretraining import PretrainConfig, pretrain
    info = pretrain(PretrainConfig(num_pairs=2_000, max_steps=20), "/tmp/tiny_clip")

Images reach the model exactly as the family's image processor prepares a square image of the
pretraining size at inference (a resize to the same size and a centre crop of the whole image are
identities, so both are ``pixel / 255``, then the processor's mean / std):
:class:`ContrastiveCollator` does that arithmetic on uint8 tensors decoded once up front.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from transformers import (
    CLIPModel,
    PreTrainedTokenizerBase,
    SiglipModel,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

from . import shapes
from .tiny import clip_image_processor, siglip_image_processor, tiny_clip_config, tiny_siglip_config
from .tokenizer import SIGLIP_TEXT_LENGTH, build_clip_tokenizer, build_siglip_tokenizer

__all__ = [
    "FAMILIES", "ContrastiveCollator", "PairsDataset", "PretrainConfig", "build_model", "load_pairs", "pretrain",
    "validate",
]

FAMILIES = ("clip", "siglip")
SIGLIP_LOGIT_SCALE_INIT = math.log(10.0)  # SigLIP paper (Zhai et al., 2023): t' = log 10, b = -10
SIGLIP_LOGIT_BIAS_INIT = -10.0


@dataclasses.dataclass
class PretrainConfig:
    """Everything that determines a pretraining run (and so the weights it produces).

    Attributes:
        family: ``"clip"`` or ``"siglip"`` (:data:`FAMILIES`): the model, tokenizer, image
            processor and loss.
        num_pairs: image–caption pairs generated for training (each epoch sees all of them).
        data_seed: seed of the generated pairs (keep it apart from the tasks' ``data_seed`` 0).
        image_size: image side in pixels (the vision tower's input size).
        distribution: fields of :data:`hf_zsl.shapes.PRETRAINING` to replace, e.g.
            ``{"lightings": ["neutral", "cool"]}`` (lists become tuples).
        captions: fields of :class:`hf_zsl.shapes.CaptionStyle` to replace, e.g. ``{"rare_word_rate": 0.02}``.
        hidden_size, num_layers, num_heads, patch_size, projection_dim, max_text_length: tower
            sizes (:func:`hf_zsl.tiny.tiny_clip_config`). SigLIP's embeddings are as wide as its
            towers and it has 64 text positions: ``projection_dim`` must equal ``hidden_size`` and
            ``max_text_length`` be 64.
        seed: seeds the weight initialisation and the batch order.
        batch_size: pairs per step (the contrastive loss sees ``batch_size`` negatives per pair).
        num_epochs: passes over the pairs (ignored when ``max_steps`` > 0).
        max_steps: optimisation steps; ``-1`` to run ``num_epochs``.
        learning_rate, weight_decay, warmup_ratio, lr_scheduler_type, adam_beta2, max_grad_norm:
            AdamW and its schedule.
        logging_steps: steps between loss logs.
        num_threads: torch CPU threads (results are reproducible for a fixed thread count).
        save_dtype: ``"float16"`` or ``"float32"`` weights in the saved folder (the saved config
            says float32 either way, so the model always loads in float32).
        val_pairs, val_seed: the held-out validation pairs (:func:`validate`), drawn from the same
            distribution with their own seed (never the tasks' ``data_seed`` 0).
    """

    family: str = "clip"
    num_pairs: int = 100_000
    data_seed: int = 7
    image_size: int = 32
    distribution: dict = dataclasses.field(default_factory=dict)
    captions: dict = dataclasses.field(default_factory=dict)
    hidden_size: int = 128
    num_layers: int = 3
    num_heads: int = 4
    patch_size: int = 8
    projection_dim: int = 128
    max_text_length: int = 77
    seed: int = 0
    batch_size: int = 256
    num_epochs: float = 3.0
    max_steps: int = -1
    learning_rate: float = 1e-3
    weight_decay: float = 0.1
    warmup_ratio: float = 0.05
    lr_scheduler_type: str = "cosine"
    adam_beta2: float = 0.98
    max_grad_norm: float = 1.0
    logging_steps: int = 25
    num_threads: int = 2
    save_dtype: str = "float16"
    val_pairs: int = 1_000
    val_seed: int = 8

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"Unknown pretraining family {self.family!r}; choose one of {', '.join(FAMILIES)}.")
        if self.save_dtype not in ("float16", "float32"):
            raise ValueError(f"save_dtype must be 'float16' or 'float32', got {self.save_dtype!r}.")
        if self.val_seed in (0, self.data_seed):
            raise ValueError(f"val_seed {self.val_seed} must differ from the tasks' seed 0 and data_seed {self.data_seed}.")
        if self.family == "siglip" and self.max_text_length != SIGLIP_TEXT_LENGTH:
            raise ValueError(f"SigLIP has {SIGLIP_TEXT_LENGTH} text positions; max_text_length is {self.max_text_length}.")
        if self.family == "siglip" and self.projection_dim != self.hidden_size:
            raise ValueError(
                f"SigLIP's embeddings are as wide as its towers; projection_dim {self.projection_dim} != "
                f"hidden_size {self.hidden_size}."
            )

    @property
    def pad_to(self) -> int | None:
        """The fixed length captions are padded to (SigLIP: 64), or ``None`` for the batch's longest."""
        return SIGLIP_TEXT_LENGTH if self.family == "siglip" else None

    @classmethod
    def from_dict(cls, values: Mapping) -> PretrainConfig:
        """A config from a mapping (a parsed YAML file); unknown keys raise ``ValueError``."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown pretraining config keys {unknown}; known: {sorted(known)}.")
        return cls(**values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def pair_distribution(self) -> shapes.Distribution:
        """The :class:`~hf_zsl.shapes.Distribution` the pairs are drawn from."""
        fields = {k: tuple(map(tuple, v)) if k == "exclude_combos" else (tuple(v) if isinstance(v, list) else v)
                  for k, v in self.distribution.items()}
        return dataclasses.replace(shapes.PRETRAINING, **fields)

    def caption_style(self) -> shapes.CaptionStyle:
        """The :class:`~hf_zsl.shapes.CaptionStyle` of the pairs' captions."""
        return dataclasses.replace(shapes.CaptionStyle(), **self.captions)


def _build_clip(config: PretrainConfig):
    tokenizer = build_clip_tokenizer(shapes.shapes_vocabulary(), model_max_length=config.max_text_length)
    model_config = tiny_clip_config(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        image_size=config.image_size,
        patch_size=config.patch_size,
        projection_dim=config.projection_dim,
        max_text_length=config.max_text_length,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    set_seed(config.seed)
    return CLIPModel(model_config), tokenizer, clip_image_processor(config.image_size)


def _build_siglip(config: PretrainConfig):
    tokenizer = build_siglip_tokenizer(shapes.shapes_vocabulary())
    model_config = tiny_siglip_config(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        image_size=config.image_size,
        patch_size=config.patch_size,
    )
    set_seed(config.seed)
    model = SiglipModel(model_config)  # transformers initialises logit scale and bias to 0
    with torch.no_grad():
        model.logit_scale.fill_(SIGLIP_LOGIT_SCALE_INIT)
        model.logit_bias.fill_(SIGLIP_LOGIT_BIAS_INIT)
    return model, tokenizer, siglip_image_processor(config.image_size)


def build_model(config: PretrainConfig):
    """A freshly initialised ``(model, tokenizer, image_processor)`` of ``config.family``, seeded by ``config.seed``.

    The tokenizer holds every word of the shapes world; the text config's special-token ids are
    the tokenizer's, so the text tower pools at the real end-of-text token (CLIP).
    """
    return {"clip": _build_clip, "siglip": _build_siglip}[config.family](config)


class PairsDataset(torch.utils.data.Dataset):
    """Decoded pairs held in memory: ``uint8`` images `(N, H, W, 3)` and caption token ids.

    Items are ``{"pixels": (H, W, 3) uint8 tensor, "input_ids": list[int]}``.
    """

    def __init__(self, images: torch.Tensor, input_ids: Sequence[Sequence[int]]):
        if len(images) != len(input_ids):
            raise ValueError(f"{len(images)} images but {len(input_ids)} captions.")
        self.images, self.input_ids = images, list(input_ids)

    @classmethod
    def from_dataset(cls, dataset, tokenizer: PreTrainedTokenizerBase, image_size: int, batch: int = 4096) -> PairsDataset:
        """Decode the ``image`` column (RGB, ``image_size`` square) and tokenize the ``caption`` column."""
        images = np.empty((len(dataset), image_size, image_size, 3), dtype=np.uint8)
        for start in range(0, len(dataset), batch):
            rows = dataset[start : start + batch]["image"]
            for i, image in enumerate(rows):
                if image.size != (image_size, image_size):
                    raise ValueError(f"Pair {start + i} is {image.size}, expected {image_size}×{image_size} images.")
                images[start + i] = np.asarray(image.convert("RGB"))
        ids = tokenizer(list(dataset["caption"]), truncation=True)["input_ids"]
        return cls(torch.from_numpy(images), ids)

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, index: int) -> dict:
        return {"pixels": self.images[index], "input_ids": self.input_ids[index]}


class ContrastiveCollator:
    """Batches :class:`PairsDataset` items for ``model(..., return_loss=True)`` (CLIP or SigLIP).

    Images become ``pixel_values`` `(B, 3, H, W)` float32 = ``(pixel / 255 - mean) / std`` with the
    image processor's own ``rescale_factor``, ``image_mean`` and ``image_std`` (what the processor
    computes for an image already at its output size); captions `(B, L)` are padded with the
    tokenizer's pad id to ``pad_to`` tokens or, when ``None``, to the longest in the batch.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, image_processor, pad_to: int | None = None):
        self.tokenizer, self.pad_to = tokenizer, pad_to
        # Every uint8 value's normalised value per channel, computed with the processor's own
        # arithmetic (rescale in float64, cast to float32, then (x - mean) / std in float32), so
        # the pixel values are bit-identical to the processor's.
        values = (np.arange(256, dtype=np.float64) * float(image_processor.rescale_factor)).astype(np.float32)
        mean = np.asarray(image_processor.image_mean, dtype=np.float32)[:, None]
        std = np.asarray(image_processor.image_std, dtype=np.float32)[:, None]
        self.table = torch.from_numpy((values[None, :] - mean) / std)  # (3, 256)

    def pixel_values(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(B, H, W, 3)`` uint8 → normalised ``(B, 3, H, W)`` float32."""
        index = pixels.permute(0, 3, 1, 2).to(torch.long)
        return torch.stack([self.table[c][index[:, c]] for c in range(3)], dim=1)

    def text(self, input_ids: Sequence[Sequence[int]]) -> dict:
        """Token ids of ``B`` texts → padded ``input_ids`` and ``attention_mask``, `(B, L)` long tensors."""
        padding = dict(padding="max_length", max_length=self.pad_to) if self.pad_to else dict(padding="longest")
        text = self.tokenizer.pad({"input_ids": list(input_ids)}, return_tensors="pt", **padding)
        return {"input_ids": text["input_ids"], "attention_mask": text["attention_mask"]}

    def __call__(self, items: Sequence[dict]) -> dict:
        return {
            "pixel_values": self.pixel_values(torch.stack([item["pixels"] for item in items])),
            **self.text([item["input_ids"] for item in items]),
            "return_loss": True,
        }


class _LossHistory(TrainerCallback):
    """Keeps every logged training loss (``(step, loss)``) for :func:`pretrain`'s summary."""

    def __init__(self):
        self.losses: list[tuple[int, float]] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses.append((state.global_step, float(logs["loss"])))


def load_pairs(config: PretrainConfig, tokenizer: PreTrainedTokenizerBase) -> PairsDataset:
    """The config's pairs (generated once, then read from the shapes cache), decoded and tokenized."""
    pairs = shapes.pretraining_pairs(
        config.num_pairs,
        seed=config.data_seed,
        image_size=config.image_size,
        distribution=config.pair_distribution(),
        captions=config.caption_style(),
    )
    return PairsDataset.from_dataset(pairs, tokenizer, config.image_size)


@torch.no_grad()
def _embeddings(model, collator: ContrastiveCollator, pixels: torch.Tensor | None, input_ids, batch: int = 256):
    """L2-normalised image embeddings of ``pixels`` `(N, H, W, 3)` uint8, or text embeddings of
    ``input_ids`` (``N`` id lists) when ``pixels`` is ``None``: `(N, D)` float32."""
    parts = []
    for start in range(0, len(pixels) if pixels is not None else len(input_ids), batch):
        if pixels is not None:
            out = model.get_image_features(pixel_values=collator.pixel_values(pixels[start : start + batch]))
        else:
            out = model.get_text_features(**collator.text(input_ids[start : start + batch]))
        parts.append(torch.nn.functional.normalize(out.pooler_output.float(), dim=-1))
    return torch.cat(parts)


def validate(model, tokenizer: PreTrainedTokenizerBase, processor, config: PretrainConfig) -> dict:
    """Held-out figures of a pretrained model on ``config.val_pairs`` fresh pairs (seed ``config.val_seed``).

    Returns:
        ``{"pairs", "seed", "zero_shot_colour_shape", "image_to_caption_r1", "caption_to_image_r1"}``:
        zero-shot accuracy over the colour × shape names present (prompt ``"a photo of a {}."``);
        image → caption recall@1 among the distinct captions (a hit when the top caption reads as the
        image's own); caption → image recall@1 (a hit when the top image has that caption).
    """
    was_training = model.training
    model.eval()
    rows = shapes.pretraining_pairs(
        config.val_pairs, seed=config.val_seed, image_size=config.image_size,
        distribution=config.pair_distribution(), captions=config.caption_style(),
    )
    pairs = PairsDataset.from_dataset(rows, tokenizer, config.image_size)
    collator = ContrastiveCollator(tokenizer, processor, config.pad_to)
    images = _embeddings(model, collator, pairs.images, None)  # (N, D)

    names = [shapes.class_name({"colour": c, "shape": s}) for c, s in zip(rows["colour"], rows["shape"])]
    classes = sorted(set(names))
    prompts = tokenizer([f"a photo of a {name}." for name in classes], truncation=True)["input_ids"]
    predicted = (images @ _embeddings(model, collator, None, prompts).T).argmax(-1)  # (N,)
    zero_shot = float(np.mean([classes[i] == name for i, name in zip(predicted.tolist(), names)]))

    captions = list(rows["caption"])
    distinct = sorted(set(captions))
    texts = _embeddings(model, collator, None, tokenizer(distinct, truncation=True)["input_ids"])  # (C, D)
    to_caption = (images @ texts.T).argmax(-1).tolist()  # (N,)
    to_image = (texts @ images.T).argmax(-1).tolist()  # (C,)
    model.train(was_training)
    return {
        "pairs": config.val_pairs,
        "seed": config.val_seed,
        "zero_shot_colour_shape": round(zero_shot, 4),
        "image_to_caption_r1": round(float(np.mean([distinct[j] == c for j, c in zip(to_caption, captions)])), 4),
        "caption_to_image_r1": round(float(np.mean([captions[j] == c for j, c in zip(to_image, distinct)])), 4),
    }


def _folder_bytes(folder: str) -> int:
    return sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder) if os.path.isfile(os.path.join(folder, f)))


def pretrain(
    config: PretrainConfig,
    output_dir: str,
    *,
    progress: bool = True,
    pairs: PairsDataset | None = None,
    save: bool = True,
) -> dict:
    """Pretrain a tiny ``config.family`` model and save it (weights, tokenizer, image processor) to ``output_dir``.

    Args:
        config: the run.
        output_dir: the folder to write (also the Trainer's output folder; no checkpoints are kept).
        progress: show progress bars and log lines.
        pairs: already decoded pairs (default: :func:`load_pairs` of ``config``).
        save: write the folder; otherwise only train.

    Returns:
        The training summary also written to ``output_dir/training_info.json``: the config, the
        step count, wall times, the loss history, the final loss, the learned logit scale (and
        bias), the held-out :func:`validate` figures and the folder's size. The trained
        model is under the key ``"model"`` of the returned dict (not in the file).
    """
    torch.set_num_threads(config.num_threads)
    start = time.perf_counter()
    model, tokenizer, processor = build_model(config)
    if pairs is None:
        pairs = load_pairs(config, tokenizer)
    data_seconds = time.perf_counter() - start

    steps_per_epoch = math.ceil(len(pairs) / config.batch_size)
    total_steps = config.max_steps if config.max_steps > 0 else math.ceil(config.num_epochs * steps_per_epoch)
    args = TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=config.batch_size,
        max_steps=total_steps,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        warmup_steps=int(round(config.warmup_ratio * total_steps)),
        lr_scheduler_type=config.lr_scheduler_type,
        adam_beta2=config.adam_beta2,
        max_grad_norm=config.max_grad_norm,
        logging_steps=config.logging_steps,
        logging_first_step=True,
        seed=config.seed,
        data_seed=config.seed,
        use_cpu=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        save_strategy="no",
        report_to="none",
        disable_tqdm=not progress,
        log_level="info" if progress else "warning",
    )
    history = _LossHistory()
    collator = ContrastiveCollator(tokenizer, processor, config.pad_to)
    trainer = Trainer(model=model, args=args, train_dataset=pairs, data_collator=collator, callbacks=[history])
    train_start, train_cpu_start = time.perf_counter(), time.process_time()
    trainer.train()
    train_seconds, train_cpu_seconds = time.perf_counter() - train_start, time.process_time() - train_cpu_start
    model = trainer.model.eval()

    losses = history.losses
    tail = [loss for _, loss in losses[-4:]]
    info = {
        "config": config.to_dict(),
        "seed": config.seed,
        "steps": trainer.state.global_step,
        "pairs_seen": trainer.state.global_step * config.batch_size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "num_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "data_seconds": round(data_seconds, 1),
        "train_seconds": round(train_seconds, 1),
        "train_cpu_seconds": round(train_cpu_seconds, 1),  # this process's CPU time: wall time less other load
        "wall_seconds": round(time.perf_counter() - start, 1),
        "first_loss": losses[0][1] if losses else None,
        "final_loss": float(np.mean(tail)) if tail else None,
        "loss_history": losses,
        "logit_scale": float(model.logit_scale.detach().exp()),
    }
    if config.family == "siglip":
        info["logit_bias"] = float(model.logit_bias.detach())
    validation_start = time.perf_counter()
    info["validation"] = validate(model, tokenizer, processor, config)
    info["validation_seconds"] = round(time.perf_counter() - validation_start, 1)
    if save:
        os.makedirs(output_dir, exist_ok=True)
        # Weights are stored in ``save_dtype`` but the config keeps float32, so every loader
        # (``from_pretrained``'s default dtype follows the config) gets a float32 model.
        dtype = torch.float16 if config.save_dtype == "float16" else torch.float32
        model.save_pretrained(output_dir, state_dict={k: v.to(dtype) for k, v in model.state_dict().items()})
        tokenizer.save_pretrained(output_dir)
        processor.save_pretrained(output_dir)
        info["wall_seconds"] = round(time.perf_counter() - start, 1)
        with open(os.path.join(output_dir, "training_info.json"), "w") as f:
            json.dump(info, f, indent=1)
        info["folder_bytes"] = _folder_bytes(output_dir)
    info["model"] = model
    return info
