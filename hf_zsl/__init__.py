"""hf_zsl: adapt CLIP to new classes the HuggingFace way.

Importing the package registers every method with ``AutoConfig`` and
``AutoModelForZeroShotImageClassification``.
"""

from .factory import build, load_base
from .registry import METHODS, get_method
from .templates import TEMPLATE_SETS

__version__ = "0.1.0"

__all__ = ["METHODS", "TEMPLATE_SETS", "build", "get_method", "load_base"]
