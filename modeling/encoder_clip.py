"""CLIP-family adapters: OpenAI / LAION / DataComp CLIP (``CLIPModel``) and MetaCLIP 2."""

import copy

from transformers import CLIPModel, MetaClip2Model

from .encoder_base import DualEncoder


class CLIPEncoder(DualEncoder):
    """CLIP: causal text tower pooled at the first end-of-text token, softmax over labels.

    The pooling trap of OpenAI configs: ``text_config.eos_token_id`` 2 makes transformers pool at the
    highest token id, which an added (learned) token would take; :meth:`prepare_config` sets it to the
    tokenizer's real end-of-text id so pooling is by position.
    """

    family = "clip"
    display_name = "CLIP"
    model_class = CLIPModel
    model_types = ("clip",)
    no_split_modules = ("CLIPEncoderLayer",)

    @classmethod
    def prepare_config(cls, config, tokenizer):
        config = copy.deepcopy(config)
        text_config = config.text_config
        text_config.bos_token_id = tokenizer.bos_token_id
        text_config.eos_token_id = tokenizer.eos_token_id  # pool at the real end-of-text token
        text_config.pad_token_id = tokenizer.pad_token_id
        return config


class MetaClip2Encoder(CLIPEncoder):
    """MetaCLIP 2 (worldwide, multilingual tokenizer): CLIP's architecture and pooling rule."""

    family = "metaclip_2"
    display_name = "MetaCLIP 2"
    model_class = MetaClip2Model
    model_types = ("metaclip_2",)
    no_split_modules = ("MetaClip2EncoderLayer",)
