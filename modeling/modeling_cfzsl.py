"""CFZSL: a trainable CNN in an attribute space and a frozen CLIP, combined in one semantic space
(Yang et al., "Application of CLIP for efficient zero-shot learning", Multimedia Systems 2024)."""

import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, PreTrainedConfig

from .configuration_base import class_token_ids
from .configuration_cfzsl import CFZSLConfig, cnn_config_from_dict, default_cnn_config
from .encoders import encoder_class
from .modeling_base import HfZslPreTrainedModel
from .outputs import ZeroShotImageClassifierOutput


@dataclass
class CFZSLOutput(ZeroShotImageClassifierOutput):
    """:class:`ZeroShotImageClassifierOutput` plus CFZSL's image side of the combined semantic space.

    Args:
        semantic_image_embeds (`torch.FloatTensor` of shape `(num_images, num_attributes + semantic_dim)`):
            ``ψ(x) = [â(x); Q f(x)]``, not normalised (the scores are cosines of it).
        predicted_attributes (`torch.FloatTensor` of shape `(num_images, num_attributes)`):
            ``â(x)``, the CNN branch's attribute predictions.
    """

    semantic_image_embeds: torch.FloatTensor | None = None
    predicted_attributes: torch.FloatTensor | None = None


def backbone_width(config: PreTrainedConfig) -> int:
    """Channels of the pooled output of a ``transformers`` vision backbone built from ``config``."""
    if getattr(config, "hidden_sizes", None):  # ResNet, ConvNeXt, RegNet, ...
        return int(config.hidden_sizes[-1])
    for name in ("hidden_size", "hidden_dim", "num_features"):
        if getattr(config, name, None):
            return int(getattr(config, name))
    raise ValueError(f"Cannot tell the output width of a {type(config).__name__} backbone; use a ResNet-like cnn_config.")


def attribute_head(width: int, num_attributes: int) -> nn.Linear:
    """``Linear(width → num_attributes)`` (quietly empty while a model has no attribute space yet)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
        return nn.Linear(width, num_attributes)


def as_rows(matrix) -> list[list[float]]:
    """A `(rows, columns)` array-like (list, numpy array, tensor) of finite numbers as a list of float lists."""
    if hasattr(matrix, "tolist"):
        matrix = matrix.tolist()
    if not isinstance(matrix, list | tuple) or not all(isinstance(row, list | tuple) for row in matrix):
        raise ValueError("Class attributes must be a 2-D (classes, attributes) array-like: one row per class.")
    rows = [[float(value) for value in row] for row in matrix]
    if len({len(row) for row in rows}) > 1:
        raise ValueError("Class attribute rows must all have the same length (one value per attribute).")
    if not all(math.isfinite(value) for row in rows for value in row):
        raise ValueError("Class attributes must be finite numbers (no NaN or infinity).")
    return rows


class CFZSLModel(HfZslPreTrainedModel):
    """CFZSL over a frozen CLIP.

    * CNN branch (trained): a ``transformers`` vision backbone (``cnn``, ``AutoModel.from_config(cnn_config)``),
      globally pooled, then ``attribute_head`` `(width → A)`: attribute predictions ``â(x)``.
    * CLIP branch (frozen encoder, trained maps): ``image_projection`` ``Q`` `(dim → D)` of the CLIP image
      feature ``f(x)`` and ``label_projection`` ``P`` `(dim → D)` of the label's CLIP text feature ``t_y``
      (the prompt templates through the frozen text tower).
    * Combined space: ``ψ(x) = [â(x); Q f(x)]``, ``φ(y) = [a_y; P t_y]`` with ``a_y`` the class's attribute row
      (``config.class_attributes``); score ``gamma · cos(ψ(x), φ(y))``, minus ``calibration`` for the seen
      classes (calibrated stacking).

    A label is scored through its attributes, so every candidate label needs a row: a label without
    one raises a ``ValueError``; add rows with :meth:`set_class_attributes`. ``image_embeds`` /
    ``text_embeds`` of the output are the frozen CLIP features; the CNN needs the images
    (``pixel_values``) at every call.
    """

    config_class = CFZSLConfig
    default_templates = ["a photo of a {}."]
    needs_class_names = True
    needs_pixel_values = True
    output_class = CFZSLOutput

    def __init__(self, config: CFZSLConfig):
        super().__init__(config)
        cnn_config = cnn_config_from_dict(config.cnn_config)
        self.cnn = AutoModel.from_config(cnn_config)
        self.cnn_width = backbone_width(cnn_config)
        dim = self.encoder.embed_dim
        semantic_dim = config.semantic_dim or dim
        self.attribute_head = attribute_head(self.cnn_width, len(config.attribute_names or []))
        self.image_projection = nn.Linear(dim, semantic_dim, bias=False)
        self.label_projection = nn.Linear(dim, semantic_dim, bias=False)
        self.reset_projections()

    @classmethod
    def from_base(
        cls, base, tokenizer, image_processor, base_model_name_or_path, class_names=None, **hyperparameters
    ) -> "CFZSLModel":
        """Build as :meth:`HfZslPreTrainedModel.from_base`, with CFZSL's extras:

        Args:
            class_names: every class that has attributes (seen and unseen alike).
            class_attributes: `(len(class_names), A)` array-like, one attribute row per class (optional
                at build time; fitting sets it from the protocol, or call :meth:`set_class_attributes`).
            attribute_names: the ``A`` attribute names (default ``attribute_0``, ...).
            cnn_config: a backbone config (dict with ``model_type``, or a ``PreTrainedConfig``);
                default :func:`default_cnn_config`.
            cnn_pretrained: a Hub id or folder of pretrained backbone weights (``AutoModel.from_pretrained``);
                its config replaces ``cnn_config``.
        """
        if encoder_class(base.config.model_type).variable_resolution:
            raise ValueError(
                "CFZSL's CNN branch reads square images, and this base takes variable-resolution patch sequences "
                f"({base.config.model_type}): build CFZSL over a fixed-resolution base (CLIP, SigLIP, Chinese-CLIP)."
            )
        pretrained = None
        if hyperparameters.get("cnn_pretrained"):
            pretrained = AutoModel.from_pretrained(hyperparameters["cnn_pretrained"])
            hyperparameters["cnn_config"] = pretrained.config
        cnn_config = hyperparameters.get("cnn_config")
        if cnn_config is None:
            cnn_config = default_cnn_config()
        if isinstance(cnn_config, PreTrainedConfig):
            cnn_config = cnn_config.to_diff_dict()
        hyperparameters["cnn_config"] = cnn_config
        attributes = hyperparameters.pop("class_attributes", None)
        if attributes is not None:
            attributes = as_rows(attributes)
            width = len(attributes[0]) if attributes else 0
            names = hyperparameters.get("attribute_names") or [f"attribute_{i}" for i in range(width)]
            if len(names) != width:
                raise ValueError(f"{len(names)} attribute_names for class attribute rows of {width} values.")
            hyperparameters["attribute_names"] = list(names)
        model = super().from_base(
            base, tokenizer, image_processor, base_model_name_or_path, class_names=class_names, **hyperparameters
        )
        if attributes is not None:
            model.set_class_attributes(class_names, attributes)
        if pretrained is not None:
            model.cnn.load_state_dict(pretrained.state_dict())
        return model

    # ------------------------------------------------------------------ learned state
    def reset_projections(self) -> None:
        """``Q = P = I`` (orthogonal when ``D`` differs from the CLIP dim): the CLIP part of the
        semantic space starts as CLIP's own joint space."""
        with torch.no_grad():
            for projection in (self.image_projection, self.label_projection):
                weight = projection.weight
                if weight.shape[0] == weight.shape[1]:
                    weight.copy_(torch.eye(weight.shape[0]))
                else:
                    nn.init.orthogonal_(weight)

    def reset_learned_state(self, reinitialise_cnn: bool = True) -> None:
        """Fresh heads (default ``nn.Linear`` init for the attribute head, :meth:`reset_projections`) and,
        with ``reinitialise_cnn``, a freshly initialised backbone (keep it ``False`` for pretrained weights).
        Uses the global torch RNG: seed it first for reproducible runs."""
        if reinitialise_cnn:
            fresh = AutoModel.from_config(cnn_config_from_dict(self.config.cnn_config))
            self.cnn.load_state_dict(fresh.state_dict())
        self.attribute_head.reset_parameters()
        self.reset_projections()

    def text_parameters(self) -> list[torch.nn.Parameter]:
        """Label features are frozen CLIP text features: they depend on the text tower only."""
        return self.encoder.text_parameters()

    def label_features(self, labels: list[tuple[int, ...]]) -> torch.Tensor:
        """Frozen CLIP text features of the labels `(num_labels, dim)`, without autograd (nothing
        upstream is learned), so they stay cached while training."""
        with torch.no_grad():
            return super().label_features(labels)

    # ------------------------------------------------------------------ class attributes
    @property
    def num_attributes(self) -> int:
        return self.attribute_head.out_features

    def set_class_attributes(self, class_names: list[str], matrix, attribute_names: list[str] | None = None) -> None:
        """Give classes attribute rows (new classes are added, known ones overwritten).

        Args:
            class_names: the classes, e.g. ``["zebra", "okapi"]``.
            matrix: `(len(class_names), A)` array-like of attribute values, in ``attribute_names`` order.
            attribute_names: required only while the model has no attribute space yet (it then sizes a
                fresh attribute head); otherwise they must equal ``config.attribute_names``.

        Raises:
            ValueError: on a row count or width that does not fit, or other attribute names.
        """
        rows = as_rows(matrix)
        if isinstance(class_names, str) or len(rows) != len(class_names):
            raise ValueError(f"Give one attribute row per class: {len(rows)} rows for {len(class_names)} classes.")
        repeated = sorted({name for name in class_names if list(class_names).count(name) > 1})
        if repeated:
            raise ValueError(f"Classes {repeated} are given more than once; give each class one attribute row.")
        known = list(self.config.attribute_names or [])
        fresh = not known
        if attribute_names is not None and known and list(attribute_names) != known:
            raise ValueError("attribute_names differ from the model's; they must name the same attributes in order.")
        if fresh:
            width = len(rows[0]) if rows else 0
            known = list(attribute_names) if attribute_names is not None else [f"attribute_{i}" for i in range(width)]
        if any(len(row) != len(known) for row in rows):
            raise ValueError(f"Every attribute row needs {len(known)} values ({', '.join(known[:5])}, ...).")
        names = list(self.config.class_names or [])
        table = list(self.config.class_attributes or [None] * len(names))
        new = [name for name in class_names if name not in names]
        if new and self.tokenizer is None:
            raise ValueError("Adding classes needs the model's tokenizer (model.tokenizer is None).")
        if new:
            class_token_ids(self.tokenizer, names + new)  # names checked before anything changes
        if fresh:  # every input is checked: size the attribute space
            self.config.attribute_names = known
            head = attribute_head(self.cnn_width, len(known))
            self.attribute_head = head.to(device=self.attribute_head.weight.device, dtype=self.attribute_head.weight.dtype)
        if new:
            self.config.set_classes(self.tokenizer, names + new)
            names, table = names + new, table + [None] * len(new)
        for name, row in zip(class_names, rows):
            table[names.index(name)] = row
        self.config.class_attributes = table

    def class_attribute_rows(self, labels: list[tuple[int, ...]]) -> torch.Tensor:
        """The attribute rows ``a_y`` of the labels, `(num_labels, A)`.

        Raises:
            ValueError: naming every label without attributes and how to add them.
        """
        indices = self.trained_class_indices(labels)
        table = self.config.class_attributes or []
        missing = [
            label for label, index in zip(labels, indices) if index is None or index >= len(table) or table[index] is None
        ]
        if missing:
            names = [self.tokenizer.decode(list(label)) if self.tokenizer is not None else str(label) for label in missing]
            attributes = self.config.attribute_names or []
            raise ValueError(
                f"CFZSL scores a label through its class attributes, and these labels have none: {names}. Add them "
                f"with model.set_class_attributes({names!r}, matrix), matrix holding one row of {len(attributes)} "
                f"values per label ({', '.join(attributes[:6])}{', ...' if len(attributes) > 6 else ''})."
            )
        return torch.tensor([table[index] for index in indices], dtype=self.dtype, device=self.device)

    def seen_mask(self, labels: list[tuple[int, ...]]) -> torch.Tensor:
        """`(num_labels,)` booleans: which labels are seen classes (``config.seen_class_names``)."""
        seen = set(self.config.seen_class_names or [])
        names = self.config.class_names or []
        flags = [index is not None and names[index] in seen for index in self.trained_class_indices(labels)]
        return torch.tensor(flags, dtype=torch.bool, device=self.device)

    # ------------------------------------------------------------------ semantic space
    @property
    def cnn_image_size(self) -> int:
        """The CNN's input side: ``config.cnn_image_size``, by default twice the base's image size (0: unchanged)."""
        size = self.config.cnn_image_size
        return 2 * self.encoder.image_size if size is None else size

    def predict_attributes(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """CNN branch: ``â(x)`` `(num_images, A)` from images `(num_images, 3, size, size)` (resized to
        :attr:`cnn_image_size` first)."""
        pixel_values = pixel_values.to(self.attribute_head.weight.dtype)
        size = self.cnn_image_size
        if size and tuple(pixel_values.shape[-2:]) != (size, size):
            pixel_values = F.interpolate(pixel_values, size=(size, size), mode="bilinear", align_corners=False)
        output = self.cnn(pixel_values=pixel_values)
        pooled = getattr(output, "pooler_output", None)
        if pooled is None:
            hidden = output.last_hidden_state
            pooled = hidden.mean(dim=(2, 3)) if hidden.ndim == 4 else hidden.mean(dim=1)
        return self.attribute_head(pooled.flatten(1))

    def semantic_class_embeds(self, labels: list[tuple[int, ...]], text_embeds: torch.Tensor) -> torch.Tensor:
        """``φ(y) = [a_y; P t_y]`` `(num_labels, A + D)` from the labels' CLIP text features `(num_labels, dim)`."""
        return torch.cat([self.class_attribute_rows(labels), self.label_projection(text_embeds)], dim=-1)

    def compute_outputs(
        self,
        image_embeds: torch.Tensor,
        text_embeds: torch.Tensor,
        labels: list[tuple[int, ...]],
        pixel_values: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Scores and the image side of the semantic space.

        Args:
            image_embeds: `(num_images, dim)` frozen CLIP image features ``f(x)``.
            text_embeds: `(num_labels, dim)` frozen CLIP text features ``t_y``.
            labels: each label's token ids.
            pixel_values: `(num_images, 3, size, size)` the same images, for the CNN branch.

        Returns:
            ``logits_per_image`` `(num_images, num_labels)`, ``semantic_image_embeds`` `(num_images, A + D)`
            and ``predicted_attributes`` `(num_images, A)`.
        """
        if pixel_values is None:
            raise ValueError("CFZSL's CNN branch needs the images: pass pixel_values (with or without image_embeds).")
        self.encoder.check_image_inputs(pixel_values)
        if pixel_values.shape[0] != image_embeds.shape[0]:
            raise ValueError(
                f"pixel_values ({pixel_values.shape[0]} images) and image_embeds ({image_embeds.shape[0]}) differ in batch size."
            )
        class_embeds = self.semantic_class_embeds(labels, text_embeds)
        predicted = self.predict_attributes(pixel_values)
        semantic = torch.cat([predicted, self.image_projection(image_embeds.to(predicted.dtype))], dim=-1)
        logits = self.config.gamma * F.normalize(semantic, dim=-1) @ F.normalize(class_embeds, dim=-1).t()
        if self.config.calibration:
            logits = logits - self.config.calibration * self.seen_mask(labels).to(logits.dtype)
        return {"logits_per_image": logits, "semantic_image_embeds": semantic, "predicted_attributes": predicted}

    def compute_logits(
        self,
        image_embeds: torch.Tensor,
        text_embeds: torch.Tensor,
        labels: list[tuple[int, ...]],
        pixel_values: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``gamma · cos(ψ(x), φ(y)) − calibration · [y seen]``, shape `(num_images, num_labels)`."""
        return self.compute_outputs(image_embeds, text_embeds, labels, pixel_values=pixel_values)["logits_per_image"]
