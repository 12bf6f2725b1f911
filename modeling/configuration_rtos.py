"""Configuration of RTOS: relation transition with open semantics (Yan et al., arXiv 2406.11252)."""

from .encoder_base import in_context_ids
from .configuration_base import HfZslConfig
from .prompting import template_token_ids

# Generic attribute / object words (colours, rare colour words, shapes, sizes, fills, styles). They
# are whole-word tokens of the embedded shapes tokenizer and of OpenAI's CLIP BPE alike; words that
# name a target class are dropped when a model is built.
DEFAULT_ANCHOR_VOCABULARY = (
    "red orange yellow green cyan blue purple pink "
    "crimson tangerine lemon emerald turquoise azure violet rose "
    "circle square triangle star heart diamond cross hexagon pentagon crescent "
    "small large tiny filled hollow outlined solid striped dotted wavy checkered gradient grid noisy plain"
).split()

MODES = ("few_shot", "zero_shot")


def placeholder_token(anchor: int, position: int) -> str:
    """The tokenizer string of an anchor's ``position``-th learnable name token."""
    return f"<|anchor{anchor}.{position}|>"


def anchor_fields(tokenizer, vocabulary: list[str], template: str, class_names: list[str] | None) -> dict:
    """The anchor part of an :class:`RTOSConfig`, adding the placeholder tokens to ``tokenizer``.

    Anchors are the ``vocabulary`` words whose token ids differ from every target class name's.
    Anchor ``j`` gets as many placeholders as its name has tokens, so its learnable name starts out
    as exactly the name's token embeddings.

    Returns:
        ``anchor_vocabulary``, ``anchor_names``, ``anchor_name_ids`` (per anchor, the name's ids),
        ``anchor_template_ids`` (``[prefix_ids, suffix_ids]``) and ``anchor_placeholder_ids``
        (per anchor, its placeholders' ids).
    """
    if isinstance(vocabulary, str) or not vocabulary or not all(isinstance(w, str) and w.strip() for w in vocabulary):
        raise ValueError("anchor_vocabulary must be a non-empty list of non-empty strings.")

    def ids(text: str) -> tuple[int, ...]:
        return tuple(in_context_ids(tokenizer, text))  # names sit inside the anchor template

    targets = {ids(name) for name in class_names or []}
    anchors, seen = [], set()
    for word in vocabulary:
        if ids(word) not in targets and ids(word) not in seen:
            anchors.append(word)
            seen.add(ids(word))
    if not anchors:
        raise ValueError("Every anchor_vocabulary word names a target class: RTOS needs anchors that are not targets.")
    names = [placeholder_token(j, t) for j, word in enumerate(anchors) for t in range(len(ids(word)))]
    tokenizer.add_tokens(names, special_tokens=True)
    placeholder_ids, position = [], 0
    for word in anchors:
        count = len(ids(word))
        placeholder_ids.append(tokenizer.convert_tokens_to_ids(names[position : position + count]))
        position += count
    return {
        "anchor_vocabulary": list(vocabulary),
        "anchor_names": anchors,
        "anchor_name_ids": [list(ids(word)) for word in anchors],
        "anchor_template_ids": template_token_ids(tokenizer, template),
        "anchor_placeholder_ids": placeholder_ids,
    }


class RTOSConfig(HfZslConfig):
    """RTOS: zero-shot CLIP plus a relation transition module over learnable anchors.

    Args:
        mode (`str`): ``"few_shot"`` (fitting trains the anchor tokens and the RTM projections) or
            ``"zero_shot"`` (the anchors stay their names, the RTM stays the identity; fitting only
            chooses ``alpha`` / ``tau`` on validation data).
        anchor_vocabulary (`list[str]`, *optional*): candidate anchor class names (default
            :data:`DEFAULT_ANCHOR_VOCABULARY`); those naming a target class are dropped at build time.
        anchor_template (`str`): the anchors' prompt, ``"a photo of a {}."``; ``{}`` holds the
            anchor's learnable name tokens.
        alpha (`float`): weight of the RTM output; logits are ``logit_scale * (cos + alpha * C_anc * o)``.
        tau (`float`): temperature of the anchor→target relation ``softmax_j(cos(t_i, a_j) / tau)``.
        anchor_names (`list[str]`): the anchors kept (set at build time).
        anchor_name_ids (`list[list[int]]`): per anchor, the token ids of its name (their embeddings
            initialise the placeholders; a call-time label with the same ids masks the anchor out).
        anchor_template_ids (`list`): ``[prefix_ids, suffix_ids]`` of ``anchor_template``.
        anchor_placeholder_ids (`list[list[int]]`): per anchor, the ids of its placeholder tokens.
    """

    model_type = "hfzsl_rtos"

    mode: str = "few_shot"
    anchor_vocabulary: list | None = None
    anchor_template: str = "a photo of a {}."
    alpha: float = 0.5
    tau: float = 0.5
    anchor_names: list | None = None
    anchor_name_ids: list | None = None
    anchor_template_ids: list | None = None
    anchor_placeholder_ids: list | None = None
