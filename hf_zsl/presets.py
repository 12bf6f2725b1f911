"""Presets: a method's named settings, chosen from the base (DESIGN §3b).

``paper`` is the official code's recipe (never its test-set selection) and the default on every base
but the embedded ones; ``embedded`` holds the settings tuned for the embedded tiny bases and is their
default. A method declares its presets once, as a :class:`Presets`, in its ``hf_zsl/methods`` module;
the registry carries it and every entry point resolves it here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .modeling.modeling_base import EMBEDDED_FOLDERS
from .training import FitSettings, run_settings, settings_from_dict

PAPER, EMBEDDED = "paper", "embedded"
EMBEDDED_BASES = tuple(EMBEDDED_FOLDERS)

# Tip-Adapter-F's official training budget (docs/official_recipes.md §2.6): AdamW lr 1e-3, eps 1e-4, weight
# decay 0.01, per-iteration cosine, batch 256, 20 epochs, each over a fresh augmented view (crop scale 0.5)
# of every support image, no clipping, fp16 on a GPU. RTOS and CCLI publish no code: their `paper` presets
# borrow this budget, the one both papers compare against (a documented assumption, not their recipe).
TIP_F_BUDGET = FitSettings(
    epochs=20, batch_size=256, learning_rate=1e-3, weight_decay=0.01, adam_epsilon=1e-4, max_grad_norm=0.0,
    train_views=20, crop_scale=0.5, precision="fp16",
)


def default_preset(base) -> str:
    """``"embedded"`` for the embedded bases (``"embedded"``, ``"embedded-siglip"``), else ``"paper"``."""
    return EMBEDDED if isinstance(base, str) and base in EMBEDDED_BASES else PAPER


def preset_name(method: str, names, base, preset: str | None = None) -> str:
    """The preset a run of ``method`` uses over ``base``: ``preset`` if given, else the base's default
    (:func:`default_preset`; ``embedded`` where the method has no ``paper`` preset yet).

    Raises:
        ValueError: for a preset ``method`` does not have, naming those it has.
    """
    names = tuple(names)
    if preset is None:
        preset = default_preset(base)
        return preset if preset in names else EMBEDDED
    if preset not in names:
        raise ValueError(f"{method} has no preset {preset!r}; choose one of {', '.join(names)}.")
    return preset


@dataclasses.dataclass(frozen=True)
class Resolved:
    """A resolved preset: its name and the settings a fit trains with (overrides applied)."""

    preset: str
    settings: Any

    def to_dict(self) -> dict:
        """``{"preset": name, "settings": {field: value}}``, as results, ``run.json`` and cards record it."""
        return {"preset": self.preset, "settings": dataclasses.asdict(self.settings)}


@dataclasses.dataclass(frozen=True)
class Presets:
    """A method's presets by name.

    Attributes:
        presets: name → a settings instance, or ``preset(view) -> settings`` where the recipe depends on
            the training view (e.g. CoOp's epochs by shot count, ``view.k``). Every preset of a method
            gives the same settings class; ``embedded`` is required.
    """

    presets: Mapping[str, Any]

    def __post_init__(self):
        if EMBEDDED not in self.presets:
            raise ValueError(f"Every method needs an {EMBEDDED!r} preset; got {sorted(self.presets)}.")

    @property
    def embedded(self):
        """The ``embedded`` preset's settings (a settings instance)."""
        return self.presets[EMBEDDED]

    def names(self) -> tuple[str, ...]:
        return tuple(self.presets)

    def check(self, method: str, base, preset: str | None = None, overrides: Mapping | None = None) -> str:
        """Validate a run's preset and ``settings`` overrides before anything is computed; returns the preset's name.

        Raises:
            ValueError: an unknown preset, or an override naming a field the method's settings lack.
            TypeError: an override of the wrong type.
        """
        name = preset_name(method, self.names(), base, preset)
        settings_from_dict(self.embedded, overrides or {})
        return name

    def resolve(self, method: str, base, view, preset: str | None = None, overrides: Mapping | None = None) -> Resolved:
        """The preset of a run of ``method`` over ``base`` on the training ``view``, seeded with the
        protocol's seed (:func:`~hf_zsl.training.run_settings`), with ``overrides`` applied field by field."""
        name = self.check(method, base, preset, overrides)
        chosen = self.presets[name]
        settings = chosen(view) if callable(chosen) else chosen
        return Resolved(name, run_settings(settings, view, dict(overrides or {})))
