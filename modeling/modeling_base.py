"""The model every hf_zsl method builds on: a frozen dual encoder (any supported family, behind the
interface of :mod:`.encoder_base`), token-level prompting, cached label features, and checkpoints
that hold only what was learned."""

import copy
import importlib.util
import os
import tempfile
from collections.abc import Callable

import torch
import torch.nn.functional as F
from huggingface_hub import HfApi
from safetensors.torch import load_file, save_file
from transformers import AutoImageProcessor, AutoTokenizer, PreTrainedModel
from transformers.utils import cached_file, logging
from transformers.utils.hub import convert_file_size_to_int

from .checkpoint import (
    check_against_model,
    check_manifest,
    config_digest,
    read_safetensors_header,
    state_digest,
    write_manifest,
)
from .configuration_base import HfZslConfig
from .encoder_base import DualEncoder, in_context_ids
from .encoders import ENCODERS, encoder_class
from .outputs import ZeroShotImageClassifierOutput
from .placeholder_tokens import PlaceholderTokens
from .prompting import check_prompt_length, label_token_ids
from .text_cache import TextFeatureCache, parameter_state_key

logger = logging.get_logger(__name__)

WEIGHTS_NAME = "model.safetensors"
EMBEDDED_BASE = "embedded"
EMBEDDED_SIGLIP_BASE = "embedded-siglip"
# The bases shipped inside the hf_zsl package: name → folder under hf_zsl/embedded.
EMBEDDED_FOLDERS = {EMBEDDED_BASE: "tiny_clip", EMBEDDED_SIGLIP_BASE: "tiny_siglip"}


def resolve_base_path(name_or_path: str) -> str:
    """Where the frozen weights named by ``base_model_name_or_path`` live.

    ``"embedded"`` (the tiny CLIP) and ``"embedded-siglip"`` (the tiny SigLIP) are shipped inside the
    installed ``hf_zsl`` package (:data:`EMBEDDED_FOLDERS`); they are located without importing
    ``hf_zsl`` so that remote-code loading keeps working where it is absent.
    """
    if name_or_path not in EMBEDDED_FOLDERS:
        return name_or_path
    spec = importlib.util.find_spec("hf_zsl")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            f"This checkpoint's base {name_or_path!r} is embedded in the hf_zsl package, which is not installed "
            "here. Install hf_zsl, or save the model with save_pretrained(..., include_base_weights=True)."
        )
    return os.path.join(list(spec.submodule_search_locations)[0], "embedded", EMBEDDED_FOLDERS[name_or_path])


class HfZslPreTrainedModel(PreTrainedModel):
    """A frozen dual encoder (``self.encoder``, a :class:`~.encoder_base.DualEncoder`) plus whatever a
    method learns.

    Subclasses set ``config_class`` and override :meth:`encode_labels` (how label ids become label
    features) and/or :meth:`compute_logits` (how image and label features become scores). The
    shared ``forward`` validates inputs, strips the pipeline's hypothesis wrapper, caches label
    features per label set, and adds the loss.
    """

    config_class = HfZslConfig
    base_model_prefix = "hfzsl"
    main_input_name = "pixel_values"
    input_modalities = ("image", "text")
    _keys_to_ignore_on_load_missing = [r"^encoder\."]
    _no_split_modules = sorted({name for encoder in ENCODERS.values() for name in encoder.no_split_modules})
    _supports_sdpa = True

    card_writer: Callable | None = None
    """Set by ``hf_zsl`` on import: writes README.md (the model card) next to saved weights."""

    def __init__(self, config: HfZslConfig):
        super().__init__(config)
        self.encoder: DualEncoder = encoder_class(config.base_config.model_type)(config.base_config)
        self.text_cache = TextFeatureCache()
        self.tokenizer = None
        self.image_processor = None
        self.card_info: dict = {}
        self.post_init()

    # ------------------------------------------------------------------ building
    @classmethod
    def from_base(
        cls,
        base: PreTrainedModel,
        tokenizer,
        image_processor,
        base_model_name_or_path: str,
        base_model_revision: str | None = None,
        templates: list[str] | None = None,
        class_names: list[str] | None = None,
        **hyperparameters,
    ) -> "HfZslPreTrainedModel":
        """A fresh, untrained model of this method around the weights of ``base``.

        Args:
            base: the base dual encoder (``CLIPModel``, ``SiglipModel``, … see ``encoders.py``); its
                weights are copied and frozen.
            tokenizer: the base's tokenizer.
            image_processor: the base's image processor.
            base_model_name_or_path: recorded in the config so a checkpoint can find the base again.
            templates: prompt templates, each with one ``{}``; the method's default when omitted.
            class_names: the classes a trained method will learn (required by methods that learn
                per-class state).
            **hyperparameters: the method's configuration fields.
        """
        encoder = encoder_class(getattr(base.config, "model_type", None))
        base_config = encoder.prepare_config(copy.deepcopy(base.config), tokenizer)
        config = cls.config_class(
            base_config=base_config.to_dict(),
            text_layout=encoder.text_layout(base_config, tokenizer).to_dict(),
            base_model_name_or_path=base_model_name_or_path,
            base_model_revision=base_model_revision,
            **hyperparameters,
        )
        config.set_prompting(
            tokenizer, templates if templates is not None else cls.default_templates, written=cls.templates_are_prompts
        )
        if class_names is not None:
            config.set_classes(tokenizer, class_names)
        elif cls.needs_class_names:
            raise ValueError(f"{cls.__name__} learns per-class state: pass class_names=[...] to build it.")
        model = cls(config)
        model.encoder.model.load_state_dict(base.state_dict())
        model.tokenizer, model.image_processor = tokenizer, image_processor
        return model

    default_templates: list[str] | None = None
    templates_are_prompts: bool = True
    """Whether the templates are whole written prompts (checked to compose on ids as written); a method
    whose template only closes a prompt after learned context sets ``False``."""
    needs_class_names: bool = False
    needs_pixel_values: bool = False
    """Whether scoring needs the images themselves (a trainable image branch), not only the frozen
    image features: ``forward`` then requires ``pixel_values`` even when ``image_embeds`` are given."""
    output_class: type[ZeroShotImageClassifierOutput] = ZeroShotImageClassifierOutput
    """What ``forward`` returns; a subclass adds the fields its :meth:`compute_outputs` returns."""

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoder.eval()  # the base stays frozen, dropout off
        return self

    # ------------------------------------------------------------------ features
    @property
    def logit_scale(self) -> torch.Tensor:
        """The base's multiplier of cosine similarities (a 0-d tensor)."""
        return self.encoder.logit_scale

    def text_parameters(self) -> list[torch.nn.Parameter]:
        """Parameters label features may depend on (the cache key watches them): the text tower and
        everything the method learns."""
        learned = [p for name, p in self.named_parameters() if not name.startswith("encoder.")]
        return [*self.encoder.text_parameters(), *learned]

    def trained_class_indices(self, labels: list[tuple[int, ...]]) -> list[int | None]:
        """For each label, the index of the trained class with the same token ids, or ``None``."""
        lookup = {tuple(ids): i for i, ids in enumerate(self.config.class_token_ids or [])}
        return [lookup.get(tuple(label)) for label in labels]

    def class_rows_or(
        self, labels: list[tuple[int, ...]], rows: torch.Tensor, fallback: Callable[[list], torch.Tensor]
    ) -> torch.Tensor:
        """Label features `(num_labels, dim)` of a method with one learned row per trained class.

        Args:
            labels: each label's token ids.
            rows: `(num_classes, dim)` learned rows, in ``config.class_names`` order (normalised here).
            fallback: encodes the labels that match no trained class, `(num_unknown, dim)` normalised.
        """
        indices = self.trained_class_indices(labels)
        unknown = [label for label, index in zip(labels, indices) if index is None]
        others = iter(fallback(unknown)) if unknown else iter(())
        return torch.stack(
            [F.normalize(rows[index], dim=-1) if index is not None else next(others) for index in indices]
        )

    def label_ids(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> list[tuple[int, ...]]:
        """Each candidate label's own ids, in their in-prompt form (see :func:`prompting.label_token_ids`).

        With a tokenizer whose words take other ids after a space (``text_layout.labels_in_context``,
        e.g. SigLIP 2's Gemma), a label tokenized on its own is re-tokenized as it reads inside a prompt.
        """
        layout = self.config.layout
        labels = label_token_ids(input_ids, attention_mask, layout, self.config.hypothesis_token_ids)
        if layout.labels_in_context and self.tokenizer is not None:
            labels = [self._in_context(label) for label in labels]
        return labels

    def _in_context(self, label: tuple[int, ...]) -> tuple[int, ...]:
        text = self.tokenizer.decode(list(label), skip_special_tokens=True).strip()
        return tuple(in_context_ids(self.tokenizer, text)) if text else label

    def encode_prompts(
        self,
        rows: list[list[int]],
        learned_tokens: PlaceholderTokens | None = None,
        learned_rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Normalised text features `(num_rows, dim)` of prompts given as ids (special tokens excluded),
        laid out for the base's tokenizer and run through its text tower.

        Args:
            rows: each prompt's ids; placeholder ids of ``learned_tokens`` take their learned rows.
            learned_tokens: the method's learned tokens, if the prompts hold any.
            learned_rows: `(num_placeholders, width)` rows to use instead of ``learned_tokens``' own
                (e.g. CoOp's mean class context for an untrained label).
        """
        layout = self.config.layout
        input_ids, attention_mask = layout.pad(rows, device=self.device)
        mask = attention_mask if layout.attention_mask else None
        if learned_tokens is None:
            return self.encoder.text_features(input_ids, mask)
        embeds, filled = learned_tokens.embed(input_ids, self.encoder.token_embedding, layout.filler_id, learned_rows)
        return self.encoder.text_features(filled, mask, token_embeds=embeds)

    def prompt_features(self, labels: list[tuple[int, ...]], prompts: list[list[list[int]]]) -> torch.Tensor:
        """Normalised features of every label under every prompt, shape `(num_prompts, num_labels, dim)`."""
        check_prompt_length(labels, prompts, self.config.layout)
        rows = [[*prefix, *label, *suffix] for prefix, suffix in prompts for label in labels]
        return self.encode_prompts(rows).view(len(prompts), len(labels), -1)

    def encode_labels(self, labels: list[tuple[int, ...]]) -> torch.Tensor:
        """Label features, shape `(num_labels, dim)`: the normalised mean over the prompt templates
        of the normalised prompt features (CLIP's prompt ensembling)."""
        return F.normalize(self.prompt_features(labels, self.config.prompt_ids).mean(dim=0), dim=-1)

    def label_features(self, labels: list[tuple[int, ...]]) -> torch.Tensor:
        """:meth:`encode_labels`, computed once per label set and learned state."""
        key = (tuple(labels), parameter_state_key(self.text_parameters()))
        return self.text_cache.get_or_compute(key, lambda: self.encode_labels(labels))

    #: whether :meth:`encode_images` L2-normalises (the feature cache keeps raw features apart)
    normalises_image_features = True

    def encode_images(self, pixel_values: torch.Tensor, **image_inputs) -> torch.Tensor:
        """Normalised features of the frozen image tower, shape `(batch, dim)`.

        ``image_inputs``: the image processor's other outputs a family's tower takes (SigLIP 2's
        ``pixel_attention_mask`` and ``spatial_shapes``)."""
        return self.encoder.image_features(pixel_values, **image_inputs)

    def compute_logits(
        self,
        image_embeds: torch.Tensor,
        text_embeds: torch.Tensor,
        labels: list[tuple[int, ...]],
        pixel_values: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Scores, shape `(num_images, num_labels)`; the base's own: scaled cosine similarity, plus the
        family's logit bias (SigLIP).

        ``pixel_values`` `(num_images, 3, size, size)` reach methods that score the images themselves
        (:attr:`needs_pixel_values`); the others ignore them.
        """
        return self.similarity_logits(image_embeds, text_embeds)

    def similarity_logits(self, image_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
        """``logit_scale * image_embeds @ text_embeds.T`` (+ the base's logit bias), `(num_images, num_labels)`."""
        logits = self.logit_scale * image_embeds @ text_embeds.t()
        bias = self.encoder.logit_bias
        return logits if bias is None else logits + bias

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Scores `(num_images, num_labels)` as the stock pipeline reads ``logits``: one sigmoid per label
        for a model type naming SigLIP (zero-shot over a SigLIP base), else a softmax over the labels."""
        return logits.sigmoid() if "siglip" in self.config.model_type else logits.softmax(dim=-1)

    def compute_outputs(
        self,
        image_embeds: torch.Tensor,
        text_embeds: torch.Tensor,
        labels: list[tuple[int, ...]],
        pixel_values: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The fields of :attr:`output_class` computed from the features: ``logits_per_image`` (from
        :meth:`compute_logits`) plus whatever extra fields a method's output class declares."""
        return {"logits_per_image": self.compute_logits(image_embeds, text_embeds, labels, pixel_values=pixel_values)}

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.LongTensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        image_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        return_dict: bool | None = None,
        pixel_attention_mask: torch.Tensor | None = None,
        spatial_shapes: torch.LongTensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
    ) -> ZeroShotImageClassifierOutput | tuple:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(num_labels, sequence_length)`):
                Tokenized candidate label strings (plain class names; the stock pipeline's
                ``"This is a photo of {}."`` wrapper is recognised and removed).
            attention_mask (`torch.LongTensor` of shape `(num_labels, sequence_length)`, *optional*).
            pixel_values (`torch.FloatTensor` of shape `(num_images, 3, image_size, image_size)`):
                Images prepared by the image processor (SigLIP 2: `(num_images, patches, 3 * patch²)`).
                Give this or ``image_embeds`` (both for a method with :attr:`needs_pixel_values`: the
                images feed its trainable branch).
            image_embeds (`torch.FloatTensor` of shape `(num_images, projection_dim)`):
                Precomputed, L2-normalised frozen image features (the feature cache path).
            labels (`torch.LongTensor` of shape `(num_images,)`, *optional*):
                Index of the true candidate label per image; adds a cross-entropy ``loss``.
            pixel_attention_mask, spatial_shapes (*optional*): SigLIP 2's image processor outputs.
            token_type_ids (*optional*): accepted from BERT-style tokenizers (the pipeline passes them)
                and ignored: prompts are composed here, as single texts.
        """
        if input_ids is None:
            raise ValueError("input_ids is required: tokenize the candidate labels with the model's tokenizer.")
        label_ids = self.label_ids(input_ids, attention_mask)
        text_embeds = self.label_features(label_ids)
        if self.needs_pixel_values and pixel_values is None:
            raise ValueError(
                f"{type(self).__name__} scores the images themselves: give pixel_values (images from the image "
                "processor), with or without image_embeds."
            )
        if image_embeds is None:
            if pixel_values is None:
                raise ValueError("Give pixel_values (images from the image processor) or image_embeds.")
            image_embeds = self.encode_images(
                pixel_values, pixel_attention_mask=pixel_attention_mask, spatial_shapes=spatial_shapes
            )
        fields = self.compute_outputs(image_embeds, text_embeds, label_ids, pixel_values=pixel_values)
        logits_per_image = fields.pop("logits_per_image")

        loss = None
        if labels is not None:
            if labels.ndim != 1 or labels.shape[0] != logits_per_image.shape[0]:
                raise ValueError(
                    f"labels must have shape ({logits_per_image.shape[0]},), one class index per image; "
                    f"got {tuple(labels.shape)}."
                )
            if labels.numel() and (labels.min() < 0 or labels.max() >= len(label_ids)):
                raise ValueError(
                    f"labels must index the {len(label_ids)} candidate labels (0..{len(label_ids) - 1}); "
                    f"got values in [{int(labels.min())}, {int(labels.max())}]."
                )
            loss = F.cross_entropy(logits_per_image, labels.to(logits_per_image.device))

        output = self.output_class(
            loss=loss,
            logits_per_image=logits_per_image,
            logits_per_text=logits_per_image.t(),
            image_embeds=image_embeds,
            text_embeds=text_embeds,
            **fields,
        )
        return output if (return_dict if return_dict is not None else self.config.return_dict) else output.to_tuple()

    # ------------------------------------------------------------------ checkpoints
    def learned_state_dict(self) -> dict[str, torch.Tensor]:
        """Everything but the frozen base: what a default checkpoint holds."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("encoder.")}

    def save_pretrained(self, save_directory, *args, include_base_weights: bool = False, **kwargs):
        """Save safetensors weights, config, tokenizer, image processor, modeling code and card.

        Args:
            include_base_weights: also write the frozen base weights (a self-contained folder that
                loads without access to ``base_model_name_or_path``).
        """
        state_dict = kwargs.pop("state_dict", None)
        if state_dict is None:
            state_dict = self.state_dict() if include_base_weights else self.learned_state_dict()
        size = sum(t.numel() * t.element_size() for t in state_dict.values())
        kwargs.setdefault("max_shard_size", "50GB")  # what is checked here is what transformers shards by
        if size > convert_file_size_to_int(kwargs["max_shard_size"]):  # checked before anything is written
            raise ValueError(
                f"The weights take {size / 2**30:.1f} GiB, more than max_shard_size ({kwargs['max_shard_size']}): hf_zsl "
                "writes and checks one model.safetensors. Pass a larger max_shard_size, or save without "
                "include_base_weights (the base then loads from base_model_name_or_path)."
            )
        self.config.base_weights_included = include_base_weights
        self.config.saved_state_sha256 = state_digest(state_dict)
        self.config.base_weights_sha256, self.config.base_weights_dtype = self.base_fingerprint()
        self.config.config_sha256 = config_digest(self.config)
        # transformers pops tensors out of the dict it is given; hand it a shallow copy.
        super().save_pretrained(save_directory, *args, state_dict=dict(state_dict), **kwargs)
        if not state_dict:
            # transformers writes no weights file for an empty state; a method that learns nothing
            # still gets one, so every checkpoint has the same layout and loads the same way.
            save_file({}, os.path.join(save_directory, WEIGHTS_NAME), metadata={"format": "pt"})
        written = []
        for part in (self.tokenizer, self.image_processor):
            if part is not None:
                written.extend(part.save_pretrained(save_directory))
        if kwargs.get("is_main_process", True):
            write_manifest(save_directory, written)
        if type(self).card_writer is not None and kwargs.get("is_main_process", True):
            type(self).card_writer(self, save_directory)

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str = "Upload model",
        private: bool | None = None,
        token: str | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        include_base_weights: bool = False,
        max_shard_size: int | str = "50GB",
    ):
        """Upload what :meth:`save_pretrained` writes — model card included — to the Hub repo ``repo_id``.

        (transformers' own ``push_to_hub`` replaces README.md with a generic card; this keeps ours.)
        """
        api = HfApi(token=token)
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder, include_base_weights=include_base_weights, max_shard_size=max_shard_size)
            return api.upload_folder(
                repo_id=repo_id, folder_path=folder, commit_message=commit_message, revision=revision,
                create_pr=create_pr,
            )

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, allow_different_base: bool = False, **kwargs):
        """Load a checkpoint, check it tensor by tensor, then attach the frozen base weights.

        Checked before the model is returned: every file it was saved with (tokenizer, image processor)
        is present and unchanged, the config fields that change predictions match their digest, the
        weights match theirs, and the attached base weights are the ones it was saved with.

        Args:
            allow_different_base: attach base weights that differ from those the checkpoint was saved
                with (e.g. a deliberately re-trained base of the same shape) instead of refusing them.
        """
        hub_kwargs = {
            k: kwargs[k] for k in ("cache_dir", "revision", "token", "local_files_only", "subfolder") if k in kwargs
        }
        config = kwargs.get("config")
        if not isinstance(config, HfZslConfig):
            config = cls.config_class.from_pretrained(pretrained_model_name_or_path, **hub_kwargs)
        if config.config_sha256 and config_digest(config) != config.config_sha256:
            raise ValueError(
                f"{pretrained_model_name_or_path}: config.json was modified after saving (fields that change "
                "predictions — classes, their token ids, templates, the base's config — differ from config_sha256). "
                "Save or download the model again."
            )
        check_manifest(pretrained_model_name_or_path, **hub_kwargs)
        weights = cached_file(pretrained_model_name_or_path, WEIGHTS_NAME, **hub_kwargs)
        with torch.device("meta"):
            expected = {k: v.shape for k, v in cls(config).state_dict().items()}
        required = set(expected) if config.base_weights_included else {k for k in expected if not k.startswith("encoder.")}
        check_against_model(weights, read_safetensors_header(weights), expected, required)

        if config.saved_state_sha256 and state_digest(load_file(weights)) != config.saved_state_sha256:
            raise ValueError(
                f"Checkpoint {weights} does not match the digest recorded in config.json "
                "(saved_state_sha256): the weights were modified after saving. Save or download it again."
            )
        model = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        if not model.config.base_weights_included:
            model.load_base_weights()
            model.check_base_fingerprint(allow_different_base)
        # The tokenizer and image processor are the base's own classes: no custom code, so never a
        # "run the custom code?" prompt (config.json's auto_map would otherwise raise one).
        model.tokenizer = AutoTokenizer.from_pretrained(pretrained_model_name_or_path, trust_remote_code=False, **hub_kwargs)
        model.image_processor = AutoImageProcessor.from_pretrained(
            pretrained_model_name_or_path, trust_remote_code=False, **hub_kwargs
        )
        return model

    def base_fingerprint(self) -> tuple[str, str]:
        """``(sha256, dtype)`` of the frozen base weights as they are now."""
        return state_digest(self.encoder.model.state_dict()), str(self.encoder.model.dtype)

    def check_base_fingerprint(self, allow_different: bool = False) -> None:
        """Refuse base weights other than those the checkpoint was saved with (same shapes, other values:
        the learned state would silently score against the wrong towers)."""
        expected, dtype = self.config.base_weights_sha256, self.config.base_weights_dtype
        if not expected or allow_different:
            return
        found, found_dtype = self.base_fingerprint()
        if found_dtype != dtype:
            logger.warning(
                f"The base weights were loaded as {found_dtype} but fingerprinted as {dtype} at save time: "
                "they are not checked against the checkpoint."
            )
            return
        if found != expected:
            raise ValueError(
                f"The base weights at {self.config.base_model_name_or_path!r} are not the ones this checkpoint was "
                "saved with (base_weights_sha256 differs): its learned state belongs to another base. Point "
                "base_model_name_or_path at the original base, or pass allow_different_base=True to use these."
            )

    def load_base_weights(self) -> None:
        """Copy the frozen encoder's weights from ``config.base_model_name_or_path``."""
        source = resolve_base_path(self.config.base_model_name_or_path)
        # the dtype the model was saved in (transformers may leave part of an unloaded base in float32)
        dtype = getattr(torch, str(self.config.dtype).removeprefix("torch.")) if self.config.dtype else self.dtype
        base = type(self.encoder).model_class.from_pretrained(source, revision=self.config.base_model_revision, dtype=dtype)
        try:
            self.encoder.model.load_state_dict(base.state_dict())
        except RuntimeError as error:
            raise ValueError(
                f"The base weights at {source!r} do not fit this checkpoint's base_config: {error}"
            ) from None
        self.encoder.model.to(dtype).requires_grad_(False)
        self.text_cache.clear()
