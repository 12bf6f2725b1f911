"""SigLIP adapter: sigmoid scores, a logit bias, label texts padded to 64 tokens."""

from transformers import SiglipModel

from .encoder_base import SIGMOID, DualEncoder


class SiglipEncoder(DualEncoder):
    """SigLIP (Zhai et al., 2023): bidirectional text tower pooled at the last position, so a prompt's
    padding is part of it — texts are padded to 64 tokens as the model was trained (and as the stock
    pipeline pads them); SentencePiece tokenizer, no BOS, EOS appended. Scores are
    ``sigmoid(scale * cos + bias)``, one per label."""

    family = "siglip"
    display_name = "SigLIP"
    model_class = SiglipModel
    model_types = ("siglip",)
    probability = SIGMOID
    pipeline_text_length = 64
    no_split_modules = ("SiglipEncoderLayer",)

    @property
    def embed_dim(self) -> int:
        return self.model.config.vision_config.hidden_size

    @property
    def logit_bias(self):
        return self.model.logit_bias.squeeze()
