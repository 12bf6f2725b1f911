"""RTOS: relation transition with open semantics over a frozen CLIP (Yan et al., arXiv 2406.11252)."""

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_rtos import DEFAULT_ANCHOR_VOCABULARY, MODES, RTOSConfig, anchor_fields
from .modeling_base import HfZslPreTrainedModel
from .placeholder_tokens import PlaceholderTokens
from .prompting import check_prompt_length
from .text_cache import TextFeatureCache, parameter_state_key


class RTOSModel(HfZslPreTrainedModel):
    """Zero-shot CLIP plus a relation transition module (RTM) from the image to the targets via anchors.

    With ``f`` the image feature `(dim,)`, ``T`` the target (candidate label) text features
    `(C_tar, dim)` and ``A`` the anchor text features `(C_anc, dim)` — the prompt
    ``"a photo of a [A_j]."`` whose ``[A_j]`` tokens are learnable placeholders:

    * value ``R = softmax_j(T A^T / tau)`` `(C_tar, C_anc)`, each target's relation to the anchors;
    * attention ``a = softmax_j(logit_scale * cos(W_q f, W_k A_j))`` `(C_anc,)`, the query being
      the image and the keys the anchors (``W_q = W_k = I`` at the start: ``a`` is then CLIP's own
      zero-shot distribution of the image over the anchor names);
    * RTM output ``o = a R^T`` `(C_tar,)`, the image→target relation in `[0, 1]`;
    * logits ``logit_scale * (cos(f, T_i) + alpha * C_anc * o_i)``: ``C_anc * o`` averages 1 whatever the
      number of anchors, so ``alpha`` does not depend on it.

    Nothing is per class: targets are whatever labels come at call time, so any label strings work.
    """

    config_class = RTOSConfig
    default_templates = ["a photo of a {}."]
    needs_class_names = True

    def __init__(self, config: RTOSConfig):
        super().__init__(config)
        placeholder_ids = [i for ids in config.anchor_placeholder_ids or [] for i in ids]
        self.anchor_tokens = PlaceholderTokens(placeholder_ids, self.encoder.text_width)
        dim = self.encoder.embed_dim
        self.query_projection = nn.Linear(dim, dim, bias=False)
        self.key_projection = nn.Linear(dim, dim, bias=False)
        self.reset_projections()
        self.anchor_cache = TextFeatureCache(max_entries=1)

    @classmethod
    def from_base(cls, base, tokenizer, image_processor, base_model_name_or_path, class_names=None, **hyperparameters):
        """Build as :meth:`HfZslPreTrainedModel.from_base`; anchors are the ``anchor_vocabulary`` words
        that are not ``class_names``, each with learnable placeholder tokens added to a copy of
        ``tokenizer`` and initialised from the embeddings of the anchor's name tokens."""
        if hyperparameters.get("mode", RTOSConfig.mode) not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {hyperparameters['mode']!r}.")
        if hyperparameters.get("tau", RTOSConfig.tau) <= 0:
            raise ValueError(f"tau must be positive, got {hyperparameters['tau']!r}.")
        tokenizer = copy.deepcopy(tokenizer)
        vocabulary = hyperparameters.pop("anchor_vocabulary", None) or DEFAULT_ANCHOR_VOCABULARY
        template = hyperparameters.get("anchor_template", RTOSConfig.anchor_template)
        hyperparameters.update(anchor_fields(tokenizer, vocabulary, template, class_names))
        model = super().from_base(
            base, tokenizer, image_processor, base_model_name_or_path, class_names=class_names, **hyperparameters
        )
        model.reset_anchor_tokens()
        return model

    # ------------------------------------------------------------------ learned state
    def reset_projections(self) -> None:
        """``W_q = W_k = I``: attention starts as CLIP's zero-shot distribution over the anchors."""
        with torch.no_grad():
            for projection in (self.query_projection, self.key_projection):
                projection.weight.copy_(torch.eye(projection.weight.shape[0]))

    def reset_anchor_tokens(self) -> None:
        """Placeholder rows := the frozen token embeddings of the anchors' names."""
        name_ids = [i for ids in self.config.anchor_name_ids for i in ids]
        embedding = self.encoder.token_embedding
        self.anchor_tokens.reset(embedding.weight[torch.tensor(name_ids, device=embedding.weight.device)])

    def text_parameters(self) -> list[torch.nn.Parameter]:
        """Target (label) features are zero-shot text features: they depend on the text tower only."""
        return self.encoder.text_parameters()

    def label_features(self, labels: list[tuple[int, ...]]) -> torch.Tensor:
        """Zero-shot target features `(num_labels, dim)`, without autograd (nothing there is learned),
        so they are cached during training too."""
        with torch.no_grad():
            return super().label_features(labels)

    # ------------------------------------------------------------------ anchors
    def encode_anchors(self) -> torch.Tensor:
        """Normalised anchor features `(C_anc, dim)`: ``anchor_template`` around each anchor's
        learnable name tokens, through the frozen text tower (differentiable in the tokens)."""
        prefix, suffix = self.config.anchor_template_ids
        placeholders = self.config.anchor_placeholder_ids
        check_prompt_length(placeholders, [[prefix, suffix]], self.config.layout)
        return self.encode_prompts([[*prefix, *ids, *suffix] for ids in placeholders], self.anchor_tokens)

    def anchor_features(self) -> torch.Tensor:
        """:meth:`encode_anchors`, cached (apart from label features) per learned state while autograd is off."""
        key = parameter_state_key([*self.text_parameters(), *self.anchor_tokens.parameters()])
        return self.anchor_cache.get_or_compute(key, self.encode_anchors)

    def anchor_mask(self, labels: list[tuple[int, ...]]) -> list[bool]:
        """Per anchor, whether it is kept for this label set (an anchor named like a target is not)."""
        targets = set(map(tuple, labels))
        return [tuple(ids) not in targets for ids in self.config.anchor_name_ids]

    # ------------------------------------------------------------------ relation transition
    def relation_matrix(self, target_embeds: torch.Tensor, anchor_embeds: torch.Tensor) -> torch.Tensor:
        """The value ``R`` `(C_tar, C_anc)`: per target, a softmax over anchors of ``cos / tau``."""
        return torch.softmax(target_embeds @ anchor_embeds.t() / self.config.tau, dim=-1)

    def anchor_attention(self, image_embeds: torch.Tensor, anchor_embeds: torch.Tensor) -> torch.Tensor:
        """Attention of images (queries) over anchors (keys), `(num_images, C_anc)`."""
        query = F.normalize(self.query_projection(image_embeds), dim=-1)
        key = F.normalize(self.key_projection(anchor_embeds), dim=-1)
        return torch.softmax(self.logit_scale * query @ key.t(), dim=-1)

    def relation_transition(
        self, image_embeds: torch.Tensor, target_embeds: torch.Tensor, anchor_embeds: torch.Tensor
    ) -> torch.Tensor:
        """RTM output ``o = a R^T`` `(num_images, C_tar)`, each row's entries in `[0, 1]`."""
        attention = self.anchor_attention(image_embeds, anchor_embeds)
        return attention @ self.relation_matrix(target_embeds, anchor_embeds).t()

    def compute_logits(
        self,
        image_embeds: torch.Tensor,
        text_embeds: torch.Tensor,
        labels: list[tuple[int, ...]],
        pixel_values: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``logit_scale * (cos(f, T) + alpha * C_anc * o)``, shape `(num_images, num_labels)` (``C_anc``: the
        anchors kept for these labels); plain zero-shot logits when every anchor is named like a label."""
        logits = super().compute_logits(image_embeds, text_embeds, labels)
        keep = self.anchor_mask(labels)
        if not any(keep):
            return logits
        anchors = self.anchor_features()[torch.tensor(keep, device=logits.device)]
        transition = len(anchors) * self.relation_transition(image_embeds, text_embeds, anchors)
        return logits + self.config.alpha * self.logit_scale * transition.to(logits.dtype)
