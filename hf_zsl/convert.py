"""Convert open_clip ViT CLIPs to transformers ``CLIPModel`` folders (:func:`open_clip_to_transformers`).

open_clip's standard ``CLIP`` (a ViT image tower and its own causal text transformer) is the
architecture of transformers' ``CLIPModel`` under other tensor names: the converted folder gives
the same image and text features and can be the base of every hf_zsl method. open_clip is never
imported: a model object is read through its attributes and ``state_dict()``, a checkpoint through
safetensors and its ``open_clip_config.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping

import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, CLIPConfig, CLIPModel
from transformers.image_utils import PILImageResampling
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

from .logging import get_logger

logger = get_logger(__name__)

OPEN_CLIP_CONFIG = "open_clip_config.json"
OPEN_CLIP_WEIGHTS = "open_clip_model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
RESAMPLING = {"bicubic": PILImageResampling.BICUBIC, "bilinear": PILImageResampling.BILINEAR, "nearest": PILImageResampling.NEAREST}
LAYER_NORM_EPS = 1e-5  # torch's default, open_clip's LayerNorm

# What a convertible open_clip config may say: option -> (allowed values, why others are refused).
# Options absent from the config take open_clip's default, which is always allowed.
_TOP_LEVEL = {
    "custom_text": ((False,), "a custom text tower (CustomTextCLIP)"),
    "multimodal_cfg": ((None,), "a CoCa multimodal decoder"),
    "init_logit_bias": ((None,), "a logit bias (SigLIP-style sigmoid loss); CLIPModel has none"),
}
_VISION = {
    "timm_model_name": ((None,), "a timm image tower"),
    "attentional_pool": ((False,), "attentional pooling"),
    "no_ln_pre": ((False,), "no_ln_pre (no LayerNorm before the transformer)"),
    "pos_embed_type": (("learnable",), "non-learnable positional embeddings"),
    "pool_type": (("tok",), "pooling other than the class token"),
    "ls_init_value": ((None,), "layer scale"),
}
_TEXT = {
    "hf_model_name": ((None,), "a Hugging Face text tower"),
    "embed_cls": ((False,), "a text class token"),
    "no_causal_mask": ((False,), "a text tower without causal mask"),
    "pool_type": (("argmax", "eos"), "text pooling other than at the end-of-text token"),
    "proj_bias": ((False,), "a text projection bias"),
    "proj_type": (("linear",), "a text projection other than linear"),
    "ls_init_value": ((None,), "layer scale"),
}
_BOTH = {
    "act_kwargs": ((None, {}), "activation arguments"),
    "block_type": ((None, "default"), "custom attention blocks"),
    "qk_norm": ((False,), "q/k normalisation"),
    "scaled_cosine_attn": ((False,), "scaled cosine attention"),
    "scale_heads": ((False,), "per-head attention scales"),
    "scale_attn_inner": ((False,), "inner attention LayerNorm"),
    "scale_attn": ((False,), "attention-output LayerNorm"),
    "scale_fc": ((False,), "MLP LayerNorm"),
}


def open_clip_to_transformers(model_or_path, out_dir: str, model_config=None, tokenizer=None) -> str:
    """Convert an open_clip ViT CLIP to a transformers ``CLIPModel`` folder at ``out_dir``.

    Args:
        model_or_path: an open_clip ``CLIP`` model object (read through ``state_dict()`` and its
            attributes; open_clip is not imported), a ``.safetensors`` checkpoint, or a folder holding
            ``open_clip_model.safetensors`` (the layout of open_clip's Hub repositories). Pickled
            checkpoints (``.bin``, ``.pt``, ...) are refused: hf_zsl never unpickles.
        out_dir: the new folder; it must not exist or be empty. It is written to a temporary folder
            beside it and renamed into place once complete.
        model_config: the open_clip config: a dict or a path to a JSON file, either in the Hub's
            ``open_clip_config.json`` format (``{"model_cfg": ..., "preprocess_cfg": ...}``) or the bare
            ``model_cfg``. Default: the ``open_clip_config.json`` beside the checkpoint; for a model
            object, read off the model (its ``visual.preprocess_cfg`` gives the preprocessing).
        tokenizer: a transformers tokenizer or a folder / Hub id to load one from, saved into
            ``out_dir``. Default: none is written (a warning says so); pass the tokenizer to
            ``hf_zsl.build(..., tokenizer=...)`` later. open_clip's ViT CLIPs use OpenAI's CLIP BPE,
            the tokenizer of e.g. ``openai/clip-vit-base-patch32``.

    Returns:
        ``out_dir``.

    Raises:
        ValueError: before anything is written, for an unsupported architecture (naming it), a pickled
            checkpoint, a missing config, a checkpoint with missing, extra or wrong-shaped tensors, an
            unsupported preprocessing, or a tokenizer whose end-of-text id does not pool as open_clip does.
    """
    _check_out_dir(out_dir)
    state_dict, model_cfg, preprocess_cfg = _read_source(model_or_path, model_config)
    config = clip_config(model_cfg)
    model = _load_converted(config, convert_state_dict(state_dict, config))
    processor = clip_image_processor(preprocess_cfg, config.vision_config.image_size)
    tokenizer = _load_tokenizer(tokenizer, config)
    if tokenizer is None:
        logger.warning(
            "No tokenizer given: %s holds no tokenizer. Pass tokenizer= / --tokenizer (open_clip's ViT CLIPs use OpenAI's CLIP "
            "BPE, e.g. the tokenizer of openai/clip-vit-base-patch32) here or to hf_zsl.build.", out_dir,
        )
    _save_atomically(out_dir, [part for part in (model, processor, tokenizer) if part is not None])
    return out_dir


# --- reading the source -------------------------------------------------------------------------


def _read_source(model_or_path, model_config) -> tuple[dict, dict, dict]:
    """``(state_dict, model_cfg, preprocess_cfg)`` of a model object or a checkpoint path."""
    config = _read_config(model_config) if model_config is not None else None
    if isinstance(model_or_path, (str, os.PathLike)):
        weights = _weights_path(os.fspath(model_or_path))
        if config is None:
            config = _read_config(_beside(weights))
        return load_file(weights), config["model_cfg"], config["preprocess_cfg"]
    if not callable(getattr(model_or_path, "state_dict", None)):
        raise TypeError(
            f"open_clip_to_transformers takes an open_clip model or a checkpoint path, not {type(model_or_path).__name__}."
        )
    model_cfg = config["model_cfg"] if config is not None else _model_object_config(model_or_path)
    preprocess_cfg = (config or {}).get("preprocess_cfg") or _model_object_preprocess(model_or_path)
    return dict(model_or_path.state_dict()), model_cfg, preprocess_cfg


def _weights_path(path: str) -> str:
    """The safetensors file ``path`` names (a file, or a folder holding ``open_clip_model.safetensors``)."""
    if path.endswith(PICKLE_SUFFIXES):
        raise ValueError(
            f"{path} is a pickled checkpoint; hf_zsl never unpickles. Convert it to safetensors (load it where you "
            "trust it and save model.state_dict() with safetensors.torch.save_file) and pass that file."
        )
    if os.path.isdir(path):
        weights = os.path.join(path, OPEN_CLIP_WEIGHTS)
        if not os.path.isfile(weights):
            raise ValueError(
                f"{path} holds no {OPEN_CLIP_WEIGHTS}; pass the .safetensors checkpoint itself (pickled .bin / .pt "
                "checkpoints are refused: hf_zsl never unpickles)."
            )
        return weights
    if not os.path.isfile(path):
        raise ValueError(f"{path} does not exist; pass an open_clip .safetensors checkpoint or a folder holding one.")
    if not path.endswith(".safetensors"):
        raise ValueError(f"{path} is not a .safetensors checkpoint, the only format hf_zsl loads.")
    return path


def _beside(weights: str) -> str:
    path = os.path.join(os.path.dirname(os.path.abspath(weights)), OPEN_CLIP_CONFIG)
    if not os.path.isfile(path):
        raise ValueError(
            f"No {OPEN_CLIP_CONFIG} beside {weights}: pass the model's config with model_config= (CLI: --config), "
            "a JSON file with its model_cfg (open_clip.get_model_config(name) gives a built-in model's)."
        )
    return path


def _read_config(config) -> dict:
    """``{"model_cfg", "preprocess_cfg"}`` from a dict or JSON file in the Hub format or a bare ``model_cfg``."""
    if isinstance(config, (str, os.PathLike)):
        try:
            with open(config) as handle:
                config = json.load(handle)
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"Cannot read the open_clip config {config}: {error}") from None
    if not isinstance(config, Mapping):
        raise ValueError(f"An open_clip config is a dict (model_cfg, or {{'model_cfg', 'preprocess_cfg'}}), not {type(config).__name__}.")
    if "model_cfg" in config:
        return {"model_cfg": dict(config["model_cfg"]), "preprocess_cfg": dict(config.get("preprocess_cfg") or {})}
    return {"model_cfg": dict(config), "preprocess_cfg": {}}


def _model_object_config(model) -> dict:
    """The ``model_cfg`` of an open_clip ``CLIP`` object, read off its modules (open_clip does not keep it)."""
    try:
        visual, text = model.visual.transformer, model.transformer
        vision_block, text_block = visual.resblocks[0], text.resblocks[0]
        return {
            "embed_dim": model.visual.output_dim,
            "quick_gelu": type(text_block.mlp.gelu).__name__ == "QuickGELU",
            "init_logit_bias": None if getattr(model, "logit_bias", None) is None else float(model.logit_bias.detach()),
            "vision_cfg": {
                "image_size": list(model.visual.image_size),
                "patch_size": list(model.visual.patch_size),
                "width": visual.width,
                "layers": visual.layers,
                "head_width": visual.width // vision_block.attn.num_heads,
                "mlp_ratio": vision_block.mlp.c_fc.out_features / visual.width,
                "pool_type": model.visual.pool_type,
                "attentional_pool": getattr(model.visual, "attn_pool", None) is not None,
                "no_ln_pre": type(model.visual.ln_pre).__name__ == "Identity",
            },
            "text_cfg": {
                "context_length": model.context_length,
                "vocab_size": model.vocab_size,
                "width": text.width,
                "layers": text.layers,
                "heads": text_block.attn.num_heads,
                "mlp_ratio": text_block.mlp.c_fc.out_features / text.width,
                "pool_type": model.text_pool_type,
                "eos_id": getattr(model, "text_eos_id", None),
                "no_causal_mask": getattr(model, "attn_mask", None) is None,
            },
        }
    except (AttributeError, IndexError, TypeError) as error:
        raise ValueError(
            f"{type(model).__name__} is not an open_clip ViT CLIP ({error}): only open_clip.CLIP with a ViT image "
            "tower and open_clip's own text transformer converts (not ModifiedResNet, timm, HF-text, CustomTextCLIP "
            "or CoCa models)."
        ) from None


def _model_object_preprocess(model) -> dict:
    """The ``preprocess_cfg`` open_clip's ``create_model`` attaches to ``model.visual`` (empty when absent)."""
    return dict(getattr(getattr(model, "visual", None), "preprocess_cfg", None) or {})


# --- the config ---------------------------------------------------------------------------------


def _refuse_unsupported(model_cfg: dict) -> None:
    """Raise one ``ValueError`` naming every option of ``model_cfg`` that ``CLIPModel`` cannot express."""
    vision, text = model_cfg.get("vision_cfg") or {}, model_cfg.get("text_cfg") or {}
    problems = []
    for where, options, section in (
        ("", _TOP_LEVEL, model_cfg),
        ("vision_cfg.", {**_BOTH, **_VISION}, vision),
        ("text_cfg.", {**_BOTH, **_TEXT}, text),
    ):
        for option, (allowed, what) in options.items():
            if option in section and section[option] not in allowed:
                problems.append(f"{what} ({where}{option}={section[option]!r})")
    if isinstance(vision.get("layers"), (list, tuple)):
        problems.append(f"a ModifiedResNet image tower (vision_cfg.layers={vision['layers']!r})")
    if problems:
        raise ValueError(
            "This open_clip model cannot be converted to a transformers CLIPModel: it uses "
            + "; ".join(problems)
            + ". Only open_clip's standard ViT CLIP (class-token pooling, its own causal text transformer) converts."
        )


def _square(value, name: str) -> int:
    """An int from an int or a square ``(h, w)`` pair (``CLIPModel`` takes square images and patches)."""
    if isinstance(value, (list, tuple)):
        if len(set(value)) != 1:
            raise ValueError(f"{name}={list(value)} is not square; transformers' CLIPModel takes square images and patches.")
        value = value[0]
    return int(value)


def _norm_eps(section: dict) -> float:
    return float((section.get("norm_kwargs") or {}).get("eps", LAYER_NORM_EPS))


def _text_eos_id(text: dict) -> int:
    """The id ``CLIPModel`` pools text at: the end-of-text id for ``eos`` pooling, the highest id for ``argmax``.

    open_clip's ``argmax`` pooling takes the position of the highest id in each row, which is the
    end-of-text token of OpenAI's BPE (the last id of the vocabulary); transformers pools at the
    first position of ``eos_token_id``, the same position whenever the rows come from that tokenizer.
    """
    if text.get("pool_type", "argmax") == "eos":
        eos = int(text.get("eos_id", 2))
        if eos == 2:
            raise ValueError("text_cfg.eos_id=2 cannot be expressed: transformers' CLIP reads eos_token_id 2 as argmax pooling.")
        return eos
    return int(text.get("vocab_size", 49408)) - 1


def clip_config(model_cfg: dict) -> CLIPConfig:
    """The transformers :class:`CLIPConfig` of an open_clip ``model_cfg`` (open_clip's defaults filled in).

    Raises:
        ValueError: naming every option that ``CLIPModel`` cannot express (:func:`_refuse_unsupported`).
    """
    _refuse_unsupported(model_cfg)
    if "embed_dim" not in model_cfg:
        raise ValueError("The open_clip model_cfg has no embed_dim: pass the model's complete open_clip config.")
    vision, text = model_cfg.get("vision_cfg") or {}, model_cfg.get("text_cfg") or {}
    embed_dim = int(model_cfg["embed_dim"])
    act = "quick_gelu" if model_cfg.get("quick_gelu", False) else "gelu"
    vision_width, text_width = int(vision.get("width", 768)), int(text.get("width", 512))
    vocab_size = int(text.get("vocab_size", 49408))
    eos = _text_eos_id(text)
    text_config = dict(
        hidden_size=text_width,
        intermediate_size=int(text_width * text.get("mlp_ratio", 4.0)),
        num_hidden_layers=int(text.get("layers", 12)),
        num_attention_heads=int(text.get("heads", 8)),
        max_position_embeddings=int(text.get("context_length", 77)),
        vocab_size=vocab_size,
        hidden_act=act,
        layer_norm_eps=_norm_eps(text),
        projection_dim=embed_dim,
        bos_token_id=vocab_size - 2,  # OpenAI's BPE: start-of-text is the second-highest id, end-of-text the highest
        eos_token_id=eos,
        pad_token_id=int(text.get("pad_id", 0)),
    )
    vision_config = dict(
        hidden_size=vision_width,
        intermediate_size=int(vision_width * vision.get("mlp_ratio", 4.0)),
        num_hidden_layers=int(vision.get("layers", 12)),
        num_attention_heads=vision_width // int(vision.get("head_width", 64)),
        image_size=_square(vision.get("image_size", 224), "vision_cfg.image_size"),
        patch_size=_square(vision.get("patch_size", 16), "vision_cfg.patch_size"),
        hidden_act=act,
        layer_norm_eps=_norm_eps(vision),
        projection_dim=embed_dim,
    )
    return CLIPConfig(text_config=text_config, vision_config=vision_config, projection_dim=embed_dim)


# --- the weights --------------------------------------------------------------------------------


class _Tensors:
    """Takes tensors out of an open_clip state dict by name, remembering what is missing and what is left."""

    def __init__(self, state_dict: Mapping[str, torch.Tensor]):
        self.left = dict(state_dict)
        self.missing: list[str] = []

    def take(self, name: str) -> torch.Tensor | None:
        if name not in self.left:
            self.missing.append(name)
            return None
        return self.left.pop(name)

    def check(self) -> None:
        """Raise if a tensor was missing, or if tensors remain that no ``CLIPModel`` weight takes."""
        if self.missing:
            raise ValueError(
                f"The open_clip state dict lacks {len(self.missing)} tensors of a ViT CLIP (e.g. {self.missing[:3]}): "
                "pass a complete open_clip CLIP checkpoint (and the config it was trained with)."
            )
        if self.left:
            raise ValueError(
                f"The open_clip state dict has {len(self.left)} tensors that a transformers CLIPModel has no place for "
                f"(e.g. {sorted(self.left)[:3]}): an architecture feature this converter does not support (layer scale, "
                "attentional pooling, a logit bias, ...), or a config that does not match the checkpoint."
            )


def _encoder_layers(tensors: _Tensors, source: str, target: str, layers: int) -> dict:
    """One tower's transformer blocks: ``in_proj`` split into q / k / v, ``c_fc`` / ``c_proj`` to ``fc1`` / ``fc2``."""
    weights = {}
    for i in range(layers):
        block, layer = f"{source}resblocks.{i}.", f"{target}encoder.layers.{i}."
        for kind in ("weight", "bias"):
            packed = tensors.take(f"{block}attn.in_proj_{kind}")
            if packed is not None:
                for name, part in zip(("q", "k", "v"), packed.chunk(3)):
                    weights[f"{layer}self_attn.{name}_proj.{kind}"] = part
            for ours, theirs in (
                ("self_attn.out_proj", "attn.out_proj"), ("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"),
                ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj"),
            ):
                weights[f"{layer}{ours}.{kind}"] = tensors.take(f"{block}{theirs}.{kind}")
    return weights


def _layer_norm(tensors: _Tensors, source: str, target: str) -> dict:
    return {f"{target}.{kind}": tensors.take(f"{source}.{kind}") for kind in ("weight", "bias")}


def _transposed(tensor: torch.Tensor | None) -> torch.Tensor | None:
    return None if tensor is None else tensor.t().contiguous()


def convert_state_dict(state_dict: Mapping[str, torch.Tensor], config: CLIPConfig) -> dict:
    """The ``CLIPModel`` state dict of an open_clip ViT CLIP state dict.

    Raises:
        ValueError: when a tensor is missing or a tensor is left over (:meth:`_Tensors.check`).
    """
    tensors = _Tensors(state_dict)
    text = {
        "text_model.embeddings.token_embedding.weight": tensors.take("token_embedding.weight"),
        "text_model.embeddings.position_embedding.weight": tensors.take("positional_embedding"),
        **_encoder_layers(tensors, "transformer.", "text_model.", config.text_config.num_hidden_layers),
        **_layer_norm(tensors, "ln_final", "text_model.final_layer_norm"),
    }
    # open_clip's text projection is a (width, embed) parameter used as x @ P, or a bias-free nn.Linear.
    linear = "text_projection.weight" in tensors.left
    text["text_projection.weight"] = tensors.take("text_projection.weight") if linear else _transposed(tensors.take("text_projection"))
    vision = {
        "vision_model.embeddings.class_embedding": tensors.take("visual.class_embedding"),
        "vision_model.embeddings.patch_embedding.weight": tensors.take("visual.conv1.weight"),
        "vision_model.embeddings.position_embedding.weight": tensors.take("visual.positional_embedding"),
        **_layer_norm(tensors, "visual.ln_pre", "vision_model.pre_layrnorm"),
        **_encoder_layers(tensors, "visual.transformer.", "vision_model.", config.vision_config.num_hidden_layers),
        **_layer_norm(tensors, "visual.ln_post", "vision_model.post_layernorm"),
        "visual_projection.weight": _transposed(tensors.take("visual.proj")),
    }
    logit_scale = tensors.take("logit_scale")
    tensors.check()
    return {**text, **vision, "logit_scale": logit_scale.reshape(())}


def _load_converted(config: CLIPConfig, weights: dict) -> CLIPModel:
    """A ``CLIPModel`` holding ``weights``, in float32; shape mismatches become a ``ValueError``."""
    config.logit_scale_init_value = float(weights["logit_scale"])
    model = CLIPModel(config).eval()
    expected = model.state_dict()
    wrong = [
        f"{name}: checkpoint {tuple(tensor.shape)}, config {tuple(expected[name].shape)}"
        for name, tensor in weights.items()
        if tuple(tensor.shape) != tuple(expected[name].shape)
    ]
    if wrong:
        raise ValueError(
            f"The checkpoint does not match its open_clip config ({len(wrong)} tensors differ in shape, e.g. {wrong[:2]}): "
            "pass the config the checkpoint was trained with."
        )
    model.load_state_dict({name: tensor.float() for name, tensor in weights.items()}, strict=True)
    return model


# --- preprocessing and tokenizer ----------------------------------------------------------------


def clip_image_processor(preprocess_cfg: dict, image_size: int) -> CLIPImageProcessorPil:
    """The image processor of open_clip's ``preprocess_cfg`` (open_clip's defaults filled in).

    ``resize_mode`` ``shortest`` (open_clip's default) resizes the shortest edge and centre-crops;
    ``squash`` resizes to the square size. ``longest`` (resize and pad) has no transformers equivalent.
    """
    size = _square(preprocess_cfg.get("size", image_size), "preprocess_cfg.size")
    mode, interpolation = preprocess_cfg.get("resize_mode", "shortest"), preprocess_cfg.get("interpolation", "bicubic")
    if mode not in ("shortest", "squash"):
        raise ValueError(f"preprocess_cfg.resize_mode={mode!r} has no CLIPImageProcessor equivalent (supported: shortest, squash).")
    if interpolation not in RESAMPLING:
        raise ValueError(f"preprocess_cfg.interpolation={interpolation!r} is not supported (supported: {', '.join(RESAMPLING)}).")
    square = {"height": size, "width": size}
    return CLIPImageProcessorPil(
        size={"shortest_edge": size} if mode == "shortest" else square,
        crop_size=square,
        do_center_crop=mode == "shortest",
        resample=RESAMPLING[interpolation],
        image_mean=list(preprocess_cfg.get("mean", OPENAI_MEAN)),
        image_std=list(preprocess_cfg.get("std", OPENAI_STD)),
    )


def _load_tokenizer(tokenizer, config: CLIPConfig):
    """The tokenizer to save (``None`` when none is given), checked to pool where open_clip pools."""
    if tokenizer is None:
        return None
    if isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = AutoTokenizer.from_pretrained(os.fspath(tokenizer))
    eos = config.text_config.eos_token_id
    if tokenizer.eos_token_id != eos or len(tokenizer) > config.text_config.vocab_size:
        raise ValueError(
            f"The tokenizer does not fit this model: its end-of-text id is {tokenizer.eos_token_id} and it has "
            f"{len(tokenizer)} ids, but the model pools text at id {eos} (open_clip's pooling) and has "
            f"{config.text_config.vocab_size} token embeddings. Pass the tokenizer the model was trained with."
        )
    return tokenizer


# --- writing ------------------------------------------------------------------------------------


def _check_out_dir(out_dir: str) -> None:
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise ValueError(f"{out_dir} already exists and is not an empty folder; choose a new output folder or remove it.")


def _save_atomically(out_dir: str, parts) -> None:
    """``save_pretrained`` every part into a temporary folder beside ``out_dir``, then rename it into place."""
    out_dir = os.path.abspath(out_dir)
    _check_out_dir(out_dir)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.", dir=parent)
    try:
        for part in parts:
            part.save_pretrained(staging)
        if os.path.isdir(out_dir):
            os.rmdir(out_dir)
        os.rename(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
