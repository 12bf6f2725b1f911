"""Learnable placeholder tokens for the frozen CLIP text tower (PEFT trainable tokens).

A placeholder is a token added to the tokenizer (``<|anchor0.0|>``, ...) whose input embedding is
learned. The frozen CLIP's own embedding matrix is left untouched (resizing it would change the base
weights, which must keep loading from ``base_model_name_or_path``); instead the placeholders' rows
live in a small table of their own, wrapped by PEFT's
:class:`~peft.tuners.trainable_tokens.layer.TrainableTokensLayer`, so the trainable rows are PEFT
``trainable_tokens_delta`` and the table keeps their initial values.

A prompt holding placeholders is encoded by running the text tower on token embeddings
(:func:`text_features_from_embeddings`): its ids are > the end-of-text id, so pooling must use the
position of the first end-of-text token, never ``argmax(input_ids)``.
"""

import torch
import torch.nn.functional as F
from peft.tuners.trainable_tokens.layer import TrainableTokensLayer
from torch import nn
from transformers import CLIPModel
from transformers.masking_utils import create_causal_mask

ADAPTER_NAME = "default"


def frozen_table(num_rows: int, width: int) -> nn.Embedding:
    """An embedding of ``num_rows`` rows whose weight is a buffer (kept in the state, never trained)."""
    table = nn.Embedding(num_rows, width)
    weight = table.weight.detach().zero_()
    del table.weight
    table.register_buffer("weight", weight)
    return table


class PlaceholderTokens(nn.Module):
    """Input embeddings of placeholder tokens, every row trainable.

    Args:
        placeholder_ids: the tokenizer ids of the placeholders, in row order.
        width: the text tower's hidden size.

    State: ``tokens.base_layer.weight`` `(num_placeholders, width)` — the initial rows (frozen);
    ``tokens.trainable_tokens_delta.default`` `(num_placeholders, width)` — the learned rows.
    """

    def __init__(self, placeholder_ids: list[int], width: int):
        super().__init__()
        rows = list(range(len(placeholder_ids)))
        self.tokens = TrainableTokensLayer(frozen_table(len(rows), width), ADAPTER_NAME, token_indices=rows)
        self.tokens.update_layer(ADAPTER_NAME, token_indices=rows)
        self.placeholder_ids = list(placeholder_ids)

    @torch.no_grad()
    def reset(self, initial_rows: torch.Tensor) -> None:
        """Set the initial and the learned rows to ``initial_rows`` `(num_placeholders, width)`."""
        self.tokens.base_layer.weight.copy_(initial_rows)
        self.tokens.trainable_tokens_delta[ADAPTER_NAME].copy_(initial_rows)
        self.tokens.trainable_tokens_original[ADAPTER_NAME].copy_(initial_rows)

    def embed(self, input_ids: torch.Tensor, token_embedding: nn.Embedding, pad_token_id: int) -> torch.Tensor:
        """Token embeddings `(batch, length, width)` of ``input_ids`` `(batch, length)`: placeholders from
        the learned rows, every other id from the frozen ``token_embedding``."""
        placeholders = torch.tensor(self.placeholder_ids, device=input_ids.device)
        is_placeholder = input_ids.unsqueeze(-1) == placeholders  # (batch, length, placeholders)
        found = is_placeholder.any(-1)
        frozen = token_embedding(input_ids.masked_fill(found, pad_token_id))
        learned = self.tokens(is_placeholder.long().argmax(-1))
        return torch.where(found.unsqueeze(-1), learned.to(frozen.dtype), frozen)


def text_features_from_embeddings(
    clip: CLIPModel, token_embeds: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """L2-normalised text features `(batch, projection_dim)` of prompts given as token embeddings.

    The frozen text tower's own forward pass from its token embeddings on: position embeddings,
    causal encoder, final layer norm, pooling at the first ``eos_token_id`` of ``input_ids``
    `(batch, length)`, text projection.
    """
    text = clip.text_model
    eos_token_id = clip.config.text_config.eos_token_id
    if not bool((input_ids == eos_token_id).any(-1).all()):
        raise ValueError(f"Every prompt needs an end-of-text token (id {eos_token_id}) to pool at.")
    hidden = text.embeddings(inputs_embeds=token_embeds)
    mask = create_causal_mask(config=text.config, inputs_embeds=hidden, attention_mask=attention_mask, past_key_values=None)
    hidden = text.encoder(inputs_embeds=hidden, attention_mask=mask, is_causal=True).last_hidden_state
    hidden = text.final_layer_norm(hidden)
    eos_position = (input_ids == eos_token_id).int().argmax(-1)
    pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), eos_position]
    return F.normalize(clip.text_projection(pooled), dim=-1)
