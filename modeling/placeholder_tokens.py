"""Learnable placeholder tokens for the frozen text tower (PEFT trainable tokens).

A placeholder is a token added to the tokenizer (``<|anchor0.0|>``, ...) whose input embedding is
learned. The frozen base's own embedding matrix is left untouched (resizing it would change the base
weights, which must keep loading from ``base_model_name_or_path``); instead the placeholders' rows
live in a small table of their own, wrapped by PEFT's
:class:`~peft.tuners.trainable_tokens.layer.TrainableTokensLayer`, so the trainable rows are PEFT
``trainable_tokens_delta`` and the table keeps their initial values.

A prompt holding placeholders is encoded by the base's own text tower with these rows spliced into
its token embeddings (:meth:`~.encoder_base.DualEncoder.text_features`); the placeholders' ids are
replaced by an ordinary token id first, so the tower's lookup and pooling never see an added id.
"""

import torch
import torch.nn.functional as F
from peft.tuners.trainable_tokens.layer import TrainableTokensLayer
from torch import nn

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

    def rows(self) -> torch.Tensor:
        """Every placeholder's current row, `(num_placeholders, width)` (differentiable)."""
        return self.tokens(torch.arange(len(self.placeholder_ids), device=self.tokens.base_layer.weight.device))

    @torch.no_grad()
    def reset(self, initial_rows: torch.Tensor) -> None:
        """Set the initial and the learned rows to ``initial_rows`` `(num_placeholders, width)`."""
        self.tokens.base_layer.weight.copy_(initial_rows)
        self.tokens.trainable_tokens_delta[ADAPTER_NAME].copy_(initial_rows)
        self.tokens.trainable_tokens_original[ADAPTER_NAME].copy_(initial_rows)

    def embed(
        self, input_ids: torch.Tensor, token_embedding: nn.Embedding, filler_id: int, rows: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token embeddings of ``input_ids`` `(batch, length)`: placeholders from the learned rows, every
        other id from the frozen ``token_embedding``.

        Args:
            filler_id: an ordinary token id written over the placeholders in the returned ids.
            rows: `(num_placeholders, width)` rows to use instead of the learned ones.

        Returns:
            ``(embeds, ids)``: embeds `(batch, length, width)`, and ``input_ids`` with every placeholder
            replaced by ``filler_id`` (what the text tower's own lookup and pooling then read).
        """
        # id -> row through a dense lookup table: O(batch x length), whatever the number of placeholders
        placeholders = torch.tensor(self.placeholder_ids, device=input_ids.device, dtype=torch.long)
        lookup = torch.full((max(self.placeholder_ids, default=-1) + 2,), -1, device=input_ids.device, dtype=torch.long)
        lookup[placeholders] = torch.arange(len(placeholders), device=input_ids.device)
        index = lookup[input_ids.clamp(min=0, max=len(lookup) - 1)]  # ids past the table read its last entry, -1
        found = index >= 0
        index = index.clamp(min=0)
        filled = input_ids.masked_fill(found, filler_id)
        # the table itself, not the module: another thread may be splicing through the module's forward hook
        frozen = F.embedding(filled, token_embedding.weight)
        learned = self.tokens(index) if rows is None else rows[index]
        return torch.where(found.unsqueeze(-1), learned.to(frozen.dtype), frozen), filled
