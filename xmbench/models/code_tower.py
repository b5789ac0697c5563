"""Towers from the user's code: `model.image.tower = { factory = "mypkg.towers:image_tower" }`.

The factory is called with the modality and returns `TowerParts` (or the tuple `(backbone,
hidden_size, preprocess)`): an `nn.Module` whose `forward(**inputs)` gives token states (a
ModelOutput with `last_hidden_state`, or a (B, T, H) tensor) or pooled (B, H) vectors, its width,
and `preprocess`, which turns the modality's raw data into the tensors `forward` reads:

    text    list[str] captions                   → e.g. {"input_ids", "attention_mask"}
    image   uint8 array (N, H, W, 3)             → e.g. {"pixel_values"}
    audio   float32 array (N, samples) at `sample_rate` → e.g. {"input_values"}

Because the backbone is an ordinary module inside xmbench's tower, adapters (by module name, or
by role where its layers use known names), heads, freezing, precision and post-training
transforms apply to it as to any tower. A timm, torchaudio or home-grown encoder enters so.
"""
from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from xmbench.errors import ConfigError


@dataclass
class TowerParts:
    """What a tower factory returns."""

    backbone: nn.Module
    hidden_size: int
    preprocess: Callable[[Any], dict]
    pooling: str = "mean"  # how (B, T, H) states become (B, H): xmbench.models.pooling
    sample_rate: int | None = None  # audio: the rate `preprocess` expects (default: data.sample_rate)
    audio_key: str = "input_values"  # audio: the input the waveform augmentations recompute
    tokenizer: Any = None  # text: a Hugging Face tokenizer, for the token-editing augmentations


def import_factory(factory: str) -> Callable:
    """`package.module:function`, imported (a module in the working folder imports too)."""
    module_name, _, attr = factory.partition(":")
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"tower.factory: cannot import '{factory}': {exc}") from None


def tower_parts(factory: str, modality: str) -> TowerParts:
    """The factory's parts for `modality`, checked."""
    parts = import_factory(factory)(modality)
    if isinstance(parts, tuple):
        parts = TowerParts(*parts)
    if not isinstance(parts, TowerParts) or not isinstance(parts.backbone, nn.Module):
        raise ConfigError(f"tower.factory: '{factory}' returned {type(parts).__name__} for {modality}; expected "
                          f"TowerParts(backbone: nn.Module, hidden_size, preprocess) or that tuple")
    if not callable(parts.preprocess):
        raise ConfigError(f"tower.factory: '{factory}' gave a preprocess that is not callable")
    return parts


def code_tower(factory: str, modality: str, config=None):
    """The Tower around the factory's backbone."""
    from xmbench.models.reference import Tower

    parts = tower_parts(factory, modality)
    return Tower(modality, parts.backbone, int(parts.hidden_size), parts.pooling)
