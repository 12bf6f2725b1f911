"""Configuration of Tip-Adapter and Tip-Adapter-F (a few-shot key-value cache over CLIP features)."""

from .configuration_base import HfZslConfig


class TipAdapterConfig(HfZslConfig):
    """Tip-Adapter (Zhang et al., ECCV 2022): a training-free cache of few-shot image features.

    Args:
        alpha (`float`): residual ratio, the weight of the cache logits added to the zero-shot
            logits; chosen on the protocol's validation split and recorded here.
        beta (`float`): sharpness of the affinity ``exp(-beta * (1 - cos))``; chosen on validation.
        num_cache_entries (`int`): number of cached support images (``k × classes`` in a few-shot
            protocol); sizes the ``cache_keys`` and ``cache_labels`` tensors so a checkpoint loads
            into the right shapes.
        augment_views (`int`): each key is the mean feature of this many augmented views of its
            support image (random resized crop with scale (0.5, 1) + horizontal flip).
        augment_seed (`int`): seed of those augmentations.
        fine_tune_keys (`bool`): learn the keys (Tip-Adapter-F) instead of keeping them fixed.
    """

    model_type = "hfzsl_tip_adapter"

    alpha: float = 1.0
    beta: float = 1.0
    num_cache_entries: int = 0
    augment_views: int = 10
    augment_seed: int = 0
    fine_tune_keys: bool = False


class TipAdapterFConfig(TipAdapterConfig):
    """Tip-Adapter-F: :class:`TipAdapterConfig` with learnable cache keys (``fine_tune_keys=True``)."""

    model_type = "hfzsl_tip_adapter_f"

    fine_tune_keys: bool = True
