"""hf_zsl: adapt CLIP to new classes the HuggingFace way."""

__version__ = "0.1.0"
