"""CCLI's concept learning: a text concept bank → visual concepts mined from the support images →
the most distinctive ones kept.

Everything here runs once per fit, on cached normalised features; the result initialises the
model's learnable ``visual_concepts``.
"""

from __future__ import annotations

import dataclasses
import itertools

import torch
import torch.nn.functional as F

from ..modeling.modeling_ccli import CCLIModel
from ..modeling.prompting import name_token_ids, template_token_ids
from ..shapes.captions import BACKGROUND_WORDS, FILL_WORDS, LIGHTING_WORDS, RARE_COLOUR_WORDS, SIZE_WORDS
from ..shapes.world import COLOURS, SHAPES

# A candidate whose visual concept is this close (cosine) to one already kept is a near duplicate
# (e.g. "red shape" and "crimson shape" pick the same images); it is kept only to fill up.
DUPLICATE_COSINE = 0.98


def shapes_concepts() -> list[str]:
    """The default text concept bank: attribute phrases of the shapes world, `~500` phrases.

    Single attributes (``"crimson shape"``, ``"star"``, ``"outlined shape"``, ``"shape on a dotted
    background"``, ``"shape in warm light"``) and pairs of them (``"red star"``, ``"small star"``,
    ``"hollow star"``, ``"large red shape"``, ``"solid red shape"``, ``"star on a striped background"``),
    using common and rare colour words and every size / fill synonym; every word is one the shipped
    tokenizer knows (``hf_zsl.shapes.shapes_vocabulary``).
    """
    colours = [*COLOURS, *RARE_COLOUR_WORDS.values()]
    sizes = [w for words in SIZE_WORDS.values() for w in words]
    fills = [w for words in FILL_WORDS.values() for w in words]
    backgrounds = [f"on a {w} background" for w in BACKGROUND_WORDS.values()]
    lightings = [f"in {w} light" for w in LIGHTING_WORDS.values() if w]
    singles = [f"{c} shape" for c in colours] + list(SHAPES) + [f"{w} shape" for w in sizes + fills]
    singles += [f"shape {p}" for p in backgrounds + lightings]
    pairs = [f"{a} {s}" for a, s in itertools.product(colours + sizes + fills, SHAPES)]
    pairs += [f"{a} {c} shape" for a, c in itertools.product(sizes + fills, colours)]
    pairs += [f"{s} {b}" for s, b in itertools.product(SHAPES, backgrounds)]
    return singles + pairs


def concept_text_features(model: CCLIModel, concepts: list[str]) -> torch.Tensor:
    """Normalised text features `(num_concepts, dim)` of ``concepts`` in ``model.config.concept_template``,
    from the frozen text tower."""
    tokenizer = model.tokenizer
    ids = name_token_ids(tokenizer, concepts)
    prompt = [template_token_ids(tokenizer, model.config.concept_template)]
    with torch.no_grad():
        return model.prompt_features(ids, prompt)[0]


def mine_visual_concepts(image_features: torch.Tensor, text_features: torch.Tensor, top_k: int) -> torch.Tensor:
    """One visual concept per text concept: the normalised mean of the ``top_k`` support image features
    with the highest cosine to it.

    Args:
        image_features: `(num_images, dim)` normalised support features.
        text_features: `(num_concepts, dim)` normalised text concept features.
        top_k: images averaged per concept (capped at ``num_images``).

    Returns:
        `(num_concepts, dim)` normalised visual concepts.
    """
    scores = text_features @ image_features.t()
    top = scores.topk(min(top_k, image_features.shape[0]), dim=-1).indices
    return F.normalize(image_features[top].mean(dim=1), dim=-1)


def distinctiveness(activations: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Variance across classes of each concept's class-mean activation, `(num_concepts,)`.

    Args:
        activations: `(num_images, num_concepts)` concept activations of the support images.
        labels: `(num_images,)` class indices.
    """
    one_hot = F.one_hot(labels, num_classes).float()
    class_means = (one_hot.t() @ activations) / one_hot.sum(dim=0).clamp(min=1).unsqueeze(-1)
    return class_means[one_hot.sum(dim=0) > 0].var(dim=0, unbiased=False)


def select_concepts(visual: torch.Tensor, scores: torch.Tensor, count: int) -> list[int]:
    """Indices of ``count`` concepts: most distinctive first, skipping near duplicates
    (:data:`DUPLICATE_COSINE`) unless too few distinct ones remain.

    Args:
        visual: `(num_candidates, dim)` normalised visual concepts.
        scores: `(num_candidates,)` distinctiveness.
        count: how many to keep.
    """
    if count > len(scores):
        raise ValueError(f"Cannot keep {count} concepts from a bank of {len(scores)}: enlarge the bank or lower num_concepts.")
    kept, skipped = [], []
    for index in scores.argsort(descending=True).tolist():
        if kept and (visual[kept] @ visual[index]).max() > DUPLICATE_COSINE:
            skipped.append(index)
        else:
            kept.append(index)
        if len(kept) == count:
            return kept
    return kept + skipped[: count - len(kept)]


@dataclasses.dataclass
class LearnedConcepts:
    """The outcome of concept learning.

    Attributes:
        names: the text concept behind each kept visual concept.
        visual: `(count, dim)` normalised visual concepts (the init of ``visual_concepts``).
    """

    names: list[str]
    visual: torch.Tensor


def learn_concepts(
    model: CCLIModel, concepts: list[str], features: torch.Tensor, labels: torch.Tensor, num_classes: int
) -> LearnedConcepts:
    """Text concepts → visual concepts from the support set → the ``model.config.num_concepts`` most distinctive.

    Args:
        features: `(num_images, dim)` normalised support features; labels: `(num_images,)`.
    """
    text = concept_text_features(model, concepts)
    visual = mine_visual_concepts(features, text, model.config.top_k)
    activations = torch.exp(-model.config.beta * (1.0 - features @ visual.t()))
    kept = select_concepts(visual, distinctiveness(activations, labels, num_classes), model.config.num_concepts)
    return LearnedConcepts([concepts[i] for i in kept], visual[kept])
