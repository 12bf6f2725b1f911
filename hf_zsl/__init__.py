"""hf_zsl: adapt CLIP to new classes the HuggingFace way.

Importing the package registers every method with ``AutoConfig`` and
``AutoModelForZeroShotImageClassification``, and serves the zero-shot image classification
pipeline with label validation for hf_zsl models.
"""

from .cards import write_card_for_model
from .factory import build, load_base
from .modeling.modeling_base import HfZslPreTrainedModel
from .registry import METHODS, get_method
from .serving import register_pipeline
from .templates import TEMPLATE_SETS

__version__ = "0.1.0"

register_pipeline()
HfZslPreTrainedModel.card_writer = write_card_for_model

__all__ = ["METHODS", "TEMPLATE_SETS", "build", "get_method", "load_base"]
