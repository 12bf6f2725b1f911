"""Prompting at the token level.

Every hf_zsl model receives *label* token ids — ``input_ids`` of the candidate label strings — and
wraps them in its own prompt: a template such as ``"a photo of a {}."``, learned context tokens, or
both. Wrapping happens on ids, not strings: a template is stored as the ids the text before and
after ``{}`` takes inside the formatted string, and labels are used in their in-prompt form
(:func:`~.encoder_base.in_context_ids`), so ``prefix + label + suffix`` equals the ids of the
formatted string for CLIP's BPE, WordPiece and SentencePiece tokenizers (the one exception: a label
ending in punctuation right before a template's punctuation, which the tokenizer would fuse).
The special tokens around a prompt and its padding follow the base's
:class:`~.encoder_base.TextLayout`.

``pipeline("zero-shot-image-classification")`` tokenizes ``hypothesis_template.format(label)``
(default ``"This is a photo of {}."``) before calling the model. Models remember the ids of that
default wrapper and strip it, so the pipeline scores labels with the model's own prompts. Pass
``hypothesis_template="{}"`` to hand labels over unwrapped; any other hypothesis template stays part
of the label text.
"""

from collections.abc import Sequence

import torch

from .encoder_base import TextLayout, in_context_ids, text_ids

PIPELINE_HYPOTHESIS_TEMPLATE = "This is a photo of {}."

TemplateIds = list[list[int]]  # [prefix ids, suffix ids], special tokens excluded


def template_token_ids(tokenizer, template: str) -> TemplateIds:
    """Ids of the text around ``{}`` in ``template`` as they are inside the formatted string:
    ``[prefix_ids, suffix_ids]`` (special tokens excluded).

    The prefix is the text before ``{}`` without its trailing space (the label's ids carry their own
    word boundary); the suffix is read off the ids of ``label + after``, so punctuation that attaches
    to the label gets its attached ids.
    """
    if not isinstance(template, str) or template.count("{}") != 1:
        raise ValueError(f"A prompt template must be a string with exactly one '{{}}', got {template!r}.")
    before, after = template.split("{}")

    probe = in_context_ids(tokenizer, "photo")
    with_suffix = in_context_ids(tokenizer, "photo" + after) if after.strip() else probe
    suffix = with_suffix[len(probe) :] if with_suffix[: len(probe)] == probe else text_ids(tokenizer, after)
    return [text_ids(tokenizer, before.rstrip()), suffix]


def check_template_composes(tokenizer, template: str, ids: TemplateIds) -> None:
    """Raise unless ``prefix + label + suffix`` gives the tokenizer's own ids of the formatted template.

    Some tokenizers mark a word that starts the text, or follows punctuation without a space, differently
    from a word after a space (Gemma / SigLIP 2; SentencePiece after punctuation): a label composed on ids
    there would not read as the written prompt.
    """
    prefix, suffix = ids
    for probe in ("photo", "red circle"):
        written = tokenizer(template.format(probe), add_special_tokens=False)["input_ids"]
        if [*prefix, *in_context_ids(tokenizer, probe), *suffix] != written:
            raise ValueError(
                f"The template {template!r} cannot be composed on token ids with this tokenizer: the label it "
                "holds tokenizes differently where it starts the text or follows punctuation. Write the template "
                "with text and a space before '{}' (e.g. 'a photo of a {}.' or 'a {} texture.')."
            )


def name_token_ids(tokenizer, names) -> list[tuple[int, ...]]:
    """Each name's in-prompt token ids: the label form models key label features on."""
    return [tuple(in_context_ids(tokenizer, name)) for name in names]


def label_token_ids(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    layout: TextLayout,
    hypothesis: TemplateIds | None,
) -> list[tuple[int, ...]]:
    """Recover each label's own ids from tokenized label texts.

    Args:
        input_ids (`torch.LongTensor` of shape `(num_labels, sequence_length)`): tokenized labels,
            with or without the pipeline's hypothesis wrapper and the tokenizer's special tokens,
            padded on either side.
        layout: the base's prompt layout (which ids are special, which pad).
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
    prefix_specials, stops = layout.prefix_ids, layout.stop_ids()
    for position, (row, mask) in enumerate(zip(rows, masks)):
        ids = [token for token, keep in zip(row, mask) if keep]
        if attention_mask is None and layout.padding_side == "left":
            while ids and ids[0] == layout.pad_token_id:
                ids = ids[1:]
        if prefix_specials and ids[: len(prefix_specials)] == prefix_specials:
            ids = ids[len(prefix_specials) :]
        end = next((i for i, token in enumerate(ids) if token in stops), None)
        if end is not None:
            ids = ids[:end]
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


def check_prompt_length(labels: Sequence[Sequence[int]], prompts: Sequence[TemplateIds], layout: TextLayout) -> None:
    """Raise if any ``special + prefix + label + suffix + special`` needs more than the text tower's positions."""
    extra = max(len(prefix) + len(suffix) for prefix, suffix in prompts) + layout.extra_length
    limit = layout.pad_to or layout.max_length
    for position, label in enumerate(labels):
        if len(label) + extra > limit:
            raise ValueError(
                f"Candidate label at position {position} is too long: its prompt needs {len(label) + extra} "
                f"tokens but the text encoder holds {limit}. Shorten the label to at most "
                f"{limit - extra} tokens."
            )
