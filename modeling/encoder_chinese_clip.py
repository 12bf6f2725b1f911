"""Chinese-CLIP adapter: a BERT text tower pooled at [CLS], a CLIP image tower."""

from transformers import ChineseCLIPModel

from .encoder_base import DualEncoder


class ChineseCLIPEncoder(DualEncoder):
    """Chinese-CLIP (Yang et al., 2022): WordPiece tokens ``[CLS] text [SEP]``, a bidirectional BERT
    text tower pooled at ``[CLS]``, softmax over labels. The tower's ``token_type_ids`` are all zero
    for a single text, as it is called here."""

    family = "chinese_clip"
    display_name = "Chinese-CLIP"
    model_class = ChineseCLIPModel
    model_types = ("chinese_clip",)
    no_split_modules = ("ChineseCLIPTextLayer", "ChineseCLIPVisionLayer")
