"""FLPT, DFZSL's second stage: the context tokens and the ``t2i`` residual trained on the virtual
seen-class features (the model's prompt tuning on features, :func:`hf_zsl.training.train_on_features`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...modeling.modeling_dfzsl import DFZSLModel
from ...training import FitSettings, LabelledFeatures, train_on_features

# The official AdamW lr 3e-3 (torch's default weight decay 0.01), one epoch over the virtual features, no
# schedule; batch 16 instead of 4 (each step re-encodes every seen-class prompt, which dominates on CPU —
# see the card).
FLPT_DEFAULTS = FitSettings(epochs=1, batch_size=16, learning_rate=3e-3, weight_decay=0.01, lr_scheduler_type="constant")


def train_flpt(model: DFZSLModel, virtual: LabelledFeatures, settings: FitSettings) -> None:
    """Train ``model``'s context and residual on the ``virtual`` seen-class features (in place)."""
    train_on_features(model, virtual, settings)


def adapted_features(model: DFZSLModel, features: torch.Tensor) -> torch.Tensor:
    """FLPT-adapted, re-normalised features ``normalize(x + λ·r)``, `(n, dim)` on the model's device."""
    return F.normalize(model.adapt_images(features.to(model.device)).float(), dim=-1)
