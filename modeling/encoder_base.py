"""The base-encoder interface: what every hf_zsl method asks of a frozen dual encoder.

One small adapter per family (``encoder_<family>.py``) subclasses :class:`DualEncoder`. Methods talk
to the adapter, never to ``CLIPModel`` / ``SiglipModel`` directly:

- image features of prepared images (:meth:`DualEncoder.image_features`),
- text features of composed prompts, from token ids or from token embeddings with learned rows
  spliced in (:meth:`DualEncoder.text_features`),
- the scale and bias that turn cosine similarities into logits, and whether the family reads
  logits with a softmax over labels (CLIP) or one sigmoid per label (SigLIP),
- how a prompt is laid out as token ids (:class:`TextLayout`: special tokens around the text,
  padding side and length, whether the text tower sees an attention mask).

The transformers model itself is ``DualEncoder.model``; its weights are frozen and come from
``base_model_name_or_path``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel

SOFTMAX, SIGMOID = "softmax", "sigmoid"

# Splicing learned embeddings hooks the shared token-embedding module for one forward: another thread's
# text encode at that moment would see the hook. Text encodes are serialised (their results are cached).
_SPLICE_LOCK = threading.RLock()


def pooled_projection(output) -> torch.Tensor:
    """The projected embedding from ``get_{text,image}_features``.

    transformers 5 returns a ``BaseModelOutputWithPooling`` whose ``pooler_output`` holds the
    projected embedding; transformers 4 returned the tensor itself.
    """
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def text_ids(tokenizer, text: str) -> list[int]:
    """The ids of ``text`` on its own, special tokens excluded (``[]`` for blank text)."""
    return tokenizer(text, add_special_tokens=False)["input_ids"] if text.strip() else []


def _drop_prefix(ids: list[int], prefix: list[int]) -> list[int] | None:
    return ids[len(prefix) :] if ids[: len(prefix)] == prefix else None


# A word every tokenizer knows as one piece; in-context ids are read off the text after it.
_CONTEXT_WORD = "a"


def in_context_ids(tokenizer, text: str) -> list[int]:
    """The ids ``text`` gets inside a prompt, after a space (special tokens excluded).

    For CLIP's BPE, WordPiece and SentencePiece with a dummy prefix these equal the ids of ``text``
    alone; a tokenizer without a dummy prefix (Gemma, SigLIP 2) marks a word after a space
    differently from a word that starts the text, and a label is always inside a prompt.
    """
    anchor = text_ids(tokenizer, _CONTEXT_WORD)
    ids = _drop_prefix(text_ids(tokenizer, f"{_CONTEXT_WORD} {text}"), anchor)
    return ids if ids is not None else text_ids(tokenizer, text)


@dataclass
class TextLayout:
    """How a prompt's token ids reach the text tower: ``prefix_ids + prompt + suffix_ids``, padded.

    Attributes:
        prefix_ids: special tokens the tokenizer puts before text (CLIP: ``[BOS]``; SigLIP: none).
        suffix_ids: special tokens it puts after text (CLIP, SigLIP: ``[EOS]``; BERT: ``[SEP]``).
        pad_token_id: the padding id.
        padding_side: ``"right"`` or ``"left"``, as the tokenizer pads.
        pad_to: a fixed padded length (SigLIP: 64, as the stock pipeline pads) or ``None`` for the
            longest prompt.
        max_length: the text tower's positions.
        attention_mask: whether the tower is given an attention mask (the tokenizer returns one).
        filler_id: an ordinary token id that stands in, in ``input_ids``, for a learned token whose
            embedding is spliced in (never a special token, so pooling is unaffected).
        labels_in_context: whether a word's ids differ after a space (no dummy prefix): labels are
            then re-tokenized in context before use.
    """

    prefix_ids: list[int]
    suffix_ids: list[int]
    pad_token_id: int
    padding_side: str
    pad_to: int | None
    max_length: int
    attention_mask: bool
    filler_id: int
    labels_in_context: bool = False

    @classmethod
    def from_tokenizer(cls, tokenizer, max_length: int, pad_to: int | None) -> TextLayout:
        """Read the layout off ``tokenizer`` by tokenizing a probe with and without special tokens."""
        probe = "a photo"
        plain, full = text_ids(tokenizer, probe), tokenizer(probe)["input_ids"]
        start = next((i for i in range(len(full) - len(plain) + 1) if full[i : i + len(plain)] == plain), None)
        if start is None:
            raise ValueError(f"Could not find {probe!r}'s ids {plain} inside its ids with special tokens {full}.")
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if pad is None:
            raise ValueError("The tokenizer has neither a pad nor an end-of-text token; set tokenizer.pad_token.")
        filler = text_ids(tokenizer, _CONTEXT_WORD)[-1]
        words = ("red", "photo", "circle")
        return cls(
            prefix_ids=full[:start],
            suffix_ids=full[start + len(plain) :],
            pad_token_id=int(pad),
            padding_side=getattr(tokenizer, "padding_side", "right"),
            pad_to=min(pad_to, max_length) if pad_to else None,
            max_length=max_length,
            attention_mask="attention_mask" in tokenizer.model_input_names,
            filler_id=int(filler),
            labels_in_context=any(in_context_ids(tokenizer, w) != text_ids(tokenizer, w) for w in words),
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def extra_length(self) -> int:
        """Positions the special tokens take."""
        return len(self.prefix_ids) + len(self.suffix_ids)

    def stop_ids(self) -> set[int]:
        """Ids at which a tokenized label's text has ended (end-of-text, padding)."""
        return {*self.suffix_ids[:1], self.pad_token_id}

    def pad(self, rows: Sequence[Sequence[int]], device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``prefix + row + suffix`` for every row of prompt ids, padded as the tokenizer pads.

        Returns:
            ``input_ids`` and ``attention_mask``, both `torch.LongTensor` of shape `(num_rows, length)`,
            ``length`` = :attr:`pad_to` or the longest row + the special tokens.
        """
        sequences = [[*self.prefix_ids, *row, *self.suffix_ids] for row in rows]
        length = self.pad_to or max(len(s) for s in sequences)
        input_ids = torch.full((len(sequences), length), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(sequences), length), dtype=torch.long)
        for i, sequence in enumerate(sequences):
            span = slice(length - len(sequence), length) if self.padding_side == "left" else slice(0, len(sequence))
            input_ids[i, span] = torch.tensor(sequence, dtype=torch.long)
            attention_mask[i, span] = 1
        return input_ids.to(device), attention_mask.to(device)


class DualEncoder(nn.Module):
    """A frozen dual encoder of one family behind hf_zsl's interface.

    Subclasses set :attr:`model_class` (the transformers model), :attr:`model_types` (the
    ``config.model_type`` values they serve), :attr:`probability` and :attr:`pipeline_text_length`,
    and override what their family does differently.

    Args:
        config: the transformers config of the dual encoder (e.g. a ``CLIPConfig``).
    """

    family: ClassVar[str]
    display_name: ClassVar[str]
    model_class: ClassVar[type[PreTrainedModel]]
    model_types: ClassVar[tuple[str, ...]]
    probability: ClassVar[str] = SOFTMAX
    """How the family turns logits into scores: ``"softmax"`` over labels or ``"sigmoid"`` per label."""
    pipeline_text_length: ClassVar[int | None] = None
    """The fixed length the stock pipeline pads label texts to (SigLIP: 64); ``None``: the longest."""
    image_input_names: ClassVar[tuple[str, ...]] = ("pixel_values",)
    """The image processor outputs the image tower takes."""
    no_split_modules: ClassVar[tuple[str, ...]] = ()
    variable_resolution: ClassVar[bool] = False
    """Whether images arrive as patch sequences of varying size (no fixed :attr:`image_size`)."""

    def __init__(self, config: PreTrainedConfig):
        super().__init__()
        self.model = self.model_class(config)
        self.model.requires_grad_(False)

    # ------------------------------------------------------------------ building
    @classmethod
    def prepare_config(cls, config: PreTrainedConfig, tokenizer) -> PreTrainedConfig:
        """The base's config made ready for hf_zsl (a copy; e.g. CLIP's pooling id fixed)."""
        return config

    @classmethod
    def text_layout(cls, config: PreTrainedConfig, tokenizer) -> TextLayout:
        """The prompt layout of this family's tokenizer."""
        return TextLayout.from_tokenizer(tokenizer, cls.text_positions(config), cls.pipeline_text_length)

    @staticmethod
    def text_positions(config: PreTrainedConfig) -> int:
        return config.text_config.max_position_embeddings

    # ------------------------------------------------------------------ sizes
    @property
    def embed_dim(self) -> int:
        """Size of the shared image-text embedding."""
        return self.model.config.projection_dim

    @property
    def text_width(self) -> int:
        """Size of a token embedding (a learned token's row)."""
        return self.token_embedding.embedding_dim

    @property
    def token_embedding(self) -> nn.Embedding:
        """The frozen token embedding table of the text tower."""
        return self.model.text_model.get_input_embeddings()

    @property
    def logit_scale(self) -> torch.Tensor:
        """The multiplier of cosine similarities (``exp`` of the stored log-scale), a 0-d tensor."""
        return self.model.logit_scale.exp().squeeze()

    @property
    def logit_bias(self) -> torch.Tensor | None:
        """Added to the scaled similarities (SigLIP's learned bias); ``None`` for families without one."""
        return None

    # ------------------------------------------------------------------ parameters
    def text_parameters(self) -> list[nn.Parameter]:
        """Parameters text features depend on (the text tower and its projection)."""
        projection = getattr(self.model, "text_projection", None)
        return [*self.model.text_model.parameters(), *(projection.parameters() if projection is not None else ())]

    def vision_state_dict(self) -> dict[str, torch.Tensor]:
        """The image tower's tensors (what image features depend on; the feature cache keys on them)."""
        return {k: v for k, v in self.model.state_dict().items() if k.startswith(("vision_model.", "visual_projection."))}

    # ------------------------------------------------------------------ features
    def check_image_inputs(self, pixel_values, **image_inputs) -> None:
        """Raise a clear error unless ``pixel_values`` is a `(batch, channels, size, size)` float tensor
        (families with variable resolution override this)."""
        vision = self.model.config.vision_config
        expected = f"(batch, {vision.num_channels}, {vision.image_size}, {vision.image_size})"
        if not isinstance(pixel_values, torch.Tensor):
            raise TypeError(
                f"pixel_values must be a torch.Tensor of shape {expected}, got {type(pixel_values).__name__}. "
                "Prepare images with the model's image processor."
            )
        if not pixel_values.is_floating_point():
            raise TypeError(f"pixel_values must be a float tensor, got dtype {pixel_values.dtype}.")
        if tuple(pixel_values.shape[1:]) != (vision.num_channels, vision.image_size, vision.image_size) or pixel_values.ndim != 4:
            raise ValueError(
                f"pixel_values has shape {tuple(pixel_values.shape)}, expected {expected}. Prepare images with the "
                "model's image processor (it resizes, crops and converts grayscale / RGBA to RGB)."
            )

    @property
    def image_size(self) -> int | None:
        """The side of the square images the tower takes (``None``: variable resolution)."""
        return self.model.config.vision_config.image_size

    def image_features(self, pixel_values: torch.Tensor, normalize: bool = True, **image_inputs) -> torch.Tensor:
        """L2-normalised image embeddings `(batch, embed_dim)` of prepared images.

        Args:
            pixel_values: the image processor's output (CLIP: `(batch, 3, size, size)`).
            normalize: ``False`` returns the projected embeddings as the tower gives them (the CLIP paper's
                linear probe trains on those).
            **image_inputs: the other image processor outputs the family's tower takes
                (:attr:`image_input_names`, e.g. SigLIP 2's ``pixel_attention_mask`` and ``spatial_shapes``).
        """
        self.check_image_inputs(pixel_values, **image_inputs)
        pixel_values = pixel_values.to(dtype=next(self.model.vision_model.parameters()).dtype)
        extra = {k: v for k, v in image_inputs.items() if k in self.image_input_names and v is not None}
        features = pooled_projection(self.model.get_image_features(pixel_values=pixel_values, **extra))
        return F.normalize(features, dim=-1) if normalize else features

    def text_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        token_embeds: torch.Tensor | None = None,
        chunk_size: int = 1024,
    ) -> torch.Tensor:
        """L2-normalised text embeddings `(num_prompts, embed_dim)` of composed prompts.

        Args:
            input_ids (`torch.LongTensor` of shape `(num_prompts, length)`): the prompts, laid out by
                :class:`TextLayout`; pooling reads them (a learned token's position holds
                :attr:`TextLayout.filler_id`).
            attention_mask (`torch.LongTensor` of the same shape, *optional*): ``None`` when the family's
                tokenizer gives none (the tower then attends to every position, as in the stock pipeline).
            token_embeds (`torch.FloatTensor` of shape `(num_prompts, length, text_width)`, *optional*):
                the token embeddings to run the tower on instead of looking ``input_ids`` up (learned
                context spliced in). The tower's own forward runs from there on: position
                embeddings, encoder, pooling and projection are the family's own.
            chunk_size: prompts encoded at once (a 1000-label x 7-template set does not build one huge
                attention tensor).
        """
        outputs = []
        for start in range(0, input_ids.shape[0], chunk_size):
            rows = slice(start, start + chunk_size)
            kwargs = {"attention_mask": attention_mask[rows]} if attention_mask is not None else {}
            with _SPLICE_LOCK:  # a plain encode must not meet another thread's splicing hook either
                if token_embeds is None:
                    outputs.append(pooled_projection(self.model.get_text_features(input_ids=input_ids[rows], **kwargs)))
                    continue
                chunk = token_embeds[rows]
                hook = self.token_embedding.register_forward_hook(lambda module, args, output: chunk.to(output.dtype))
                try:
                    outputs.append(pooled_projection(self.model.get_text_features(input_ids=input_ids[rows], **kwargs)))
                finally:
                    hook.remove()
        return F.normalize(torch.cat(outputs), dim=-1)
