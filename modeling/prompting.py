"""Prompting at the token level.

Every hf_zsl model receives *label* token ids — ``input_ids`` of the candidate label strings — and
wraps them in its own prompt: a template such as ``"a photo of a {}."``, learned context tokens, or
both. Wrapping happens on ids, not strings: a template is stored as the ids of the text before and
after ``{}``, and CLIP's tokenizer splits words and punctuation before BPE, so
``prefix + label + suffix`` equals the ids of the formatted string (the one exception: a label
ending in punctuation right before a template's punctuation, which the tokenizer would fuse).

``pipeline("zero-shot-image-classification")`` tokenizes ``hypothesis_template.format(label)``
(default ``"This is a photo of {}."``) before calling the model. Models remember the ids of that
default wrapper and strip it, so the pipeline scores labels with the model's own prompts. Pass
``hypothesis_template="{}"`` to hand labels over unwrapped; any other hypothesis template stays part
of the label text.
"""

from collections.abc import Sequence

import torch

PIPELINE_HYPOTHESIS_TEMPLATE = "This is a photo of {}."

TemplateIds = list[list[int]]  # [prefix ids, suffix ids], special tokens excluded


def template_token_ids(tokenizer, template: str) -> TemplateIds:
    """Ids of the text around ``{}`` in ``template``: ``[prefix_ids, suffix_ids]``."""
    if not isinstance(template, str) or template.count("{}") != 1:
        raise ValueError(f"A prompt template must be a string with exactly one '{{}}', got {template!r}.")
    before, after = template.split("{}")

    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"] if text.strip() else []

    return [ids(before), ids(after)]


def name_token_ids(tokenizer, names) -> list[tuple[int, ...]]:
    """Each name's token ids without special tokens: the label form models key label features on."""
    return [tuple(tokenizer(name, add_special_tokens=False)["input_ids"]) for name in names]


def label_token_ids(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    bos_token_id: int,
    eos_token_id: int,
    hypothesis: TemplateIds | None,
) -> list[tuple[int, ...]]:
    """Recover each label's own ids from tokenized label texts.

    Args:
        input_ids (`torch.LongTensor` of shape `(num_labels, sequence_length)`): tokenized labels,
            with or without the pipeline's hypothesis wrapper, padded on the right.
        attention_mask (`torch.LongTensor` of the same shape, *optional*).

    Returns:
        One tuple of ids per label, special tokens and the hypothesis wrapper removed.

    Raises:
        ValueError: for an empty label list, an empty label, or two labels with the same ids.
    """
    if not isinstance(input_ids, torch.Tensor) or input_ids.ndim != 2:
        raise ValueError(
            "input_ids must be a 2-D tensor of tokenized candidate labels, shape (num_labels, length); "
            f"got {type(input_ids).__name__} {tuple(getattr(input_ids, 'shape', ()))}."
        )
    if input_ids.shape[0] == 0:
        raise ValueError("The list of candidate labels is empty: give at least one label.")
    rows = input_ids.tolist()
    masks = attention_mask.tolist() if attention_mask is not None else [[1] * len(r) for r in rows]
    labels, first_seen = [], {}
    for position, (row, mask) in enumerate(zip(rows, masks)):
        ids = [token for token, keep in zip(row, mask) if keep]
        if ids and ids[0] == bos_token_id:
            ids = ids[1:]
        if eos_token_id in ids:
            ids = ids[: ids.index(eos_token_id)]
        if hypothesis is not None:
            prefix, suffix = hypothesis
            n_prefix, n_suffix = len(prefix), len(suffix)
            if (
                len(ids) > n_prefix + n_suffix
                and ids[:n_prefix] == prefix
                and ids[len(ids) - n_suffix :] == suffix
            ):
                ids = ids[n_prefix : len(ids) - n_suffix]
        if not ids:
            raise ValueError(f"Candidate label at position {position} is empty: every label needs some text.")
        key = tuple(ids)
        if key in first_seen:
            raise ValueError(
                f"Candidate labels at positions {first_seen[key]} and {position} are the same text; "
                "remove the duplicate (scores are split between identical labels)."
            )
        first_seen[key] = position
        labels.append(key)
    return labels


def check_prompt_length(labels: Sequence[Sequence[int]], prompts: Sequence[TemplateIds], max_length: int) -> None:
    """Raise if any ``[bos] prefix label suffix [eos]`` needs more than ``max_length`` positions."""
    extra = max(len(prefix) + len(suffix) for prefix, suffix in prompts) + 2
    for position, label in enumerate(labels):
        if len(label) + extra > max_length:
            raise ValueError(
                f"Candidate label at position {position} is too long: its prompt needs {len(label) + extra} "
                f"tokens but the text encoder holds {max_length}. Shorten the label to at most "
                f"{max_length - extra} tokens."
            )


def pad_prompts(
    rows: Sequence[Sequence[int]], bos_token_id: int, eos_token_id: int, pad_token_id: int, device=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``[bos] row [eos]`` for every row of prompt ids, right-padded with ``pad_token_id``.

    Returns:
        ``input_ids`` and ``attention_mask``, both `torch.LongTensor` of shape
        `(num_rows, longest_row + 2)`.
    """
    longest = max(len(row) for row in rows) + 2
    input_ids = torch.full((len(rows), longest), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), longest), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, : len(row) + 2] = torch.tensor([bos_token_id, *row, eos_token_id])
        attention_mask[i, : len(row) + 2] = 1
    return input_ids.to(device), attention_mask.to(device)
