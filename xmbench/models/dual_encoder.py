"""Pretrained dual encoders as a whole: `model.pretrained = { path = "/models/clip", kind = "clip" }`.

A CLIP (text + image) or CLAP (text + audio) checkpoint gives its two towers (as `arch = "hf"`
towers of the same folder, expanded by xmbench.config), its own projection heads into its shared
space and its logit scale, so adaptation starts where the checkpoint's training ended. A third
modality's tower can stand beside them (CLIP plus an audio tower): its head starts fresh in the
checkpoint's space, and training aligns it there.

The heads and the scale are read straight from the checkpoint's safetensors (the towers load
through transformers): CLIP's `text_projection` / `visual_projection` (linear, no bias) and
`logit_scale`; CLAP's `text_projection` / `audio_projection` (linear → ReLU → linear) and
`logit_scale_t`. A head or temperature the suite sets to another technique starts fresh instead.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn

from xmbench.errors import ConfigError

HEAD_KEYS = {
    "clip": {"text": "text_projection", "image": "visual_projection"},
    "clap": {"text": "text_projection", "audio": "audio_projection"},
}
SCALE_KEY = {"clip": "logit_scale", "clap": "logit_scale_t"}


def read_tensors(path: str, prefix: str) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors whose names start with `prefix` (single-file or sharded safetensors)."""
    from safetensors import safe_open

    folder = Path(path)
    index = folder / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() else ["model.safetensors"]
    found = {}
    for name in files:
        if not (folder / name).exists():
            raise ConfigError(f"model.pretrained.path: {folder / name} is missing (the weights must be safetensors)")
        with safe_open(str(folder / name), framework="pt") as handle:
            for key in handle.keys():
                if key == prefix or key.startswith(f"{prefix}."):
                    found[key.removeprefix(prefix).lstrip(".")] = handle.get_tensor(key)
    if not found:
        raise ConfigError(f"model.pretrained.path: {folder} has no '{prefix}' tensors")
    return found


def checkpoint_head(path: str, kind: str, modality: str) -> nn.Module:
    """The checkpoint's projection head of `modality`, with its weights."""
    weights = read_tensors(path, HEAD_KEYS[kind][modality])
    if kind == "clip":
        out_dim, in_dim = weights["weight"].shape
        head = nn.Linear(in_dim, out_dim, bias=False)
    else:
        hidden, in_dim = weights["linear1.weight"].shape
        head = nn.Sequential()
        head.add_module("linear1", nn.Linear(in_dim, hidden))
        head.add_module("activation", nn.ReLU())
        head.add_module("linear2", nn.Linear(hidden, weights["linear2.weight"].shape[0]))
    head.load_state_dict(weights)
    return head


def checkpoint_temperature(path: str, kind: str) -> float:
    """The checkpoint's temperature: 1 / exp(logit scale)."""
    scale = read_tensors(path, SCALE_KEY[kind])[""]
    return 1.0 / math.exp(float(scale))


def keeps_checkpoint_head(model_cfg, modality: str) -> bool:
    """Whether the modality's head is the checkpoint's: one of its two towers, and no other head set."""
    from xmbench.config import ModelConfig

    pretrained = model_cfg.pretrained
    return (pretrained is not None and modality in HEAD_KEYS[pretrained.kind]
            and model_cfg.head == ModelConfig().head and getattr(model_cfg, modality).head is None)


def keeps_checkpoint_temperature(model_cfg) -> bool:
    from xmbench.config import ModelConfig

    return model_cfg.pretrained is not None and model_cfg.temperature == ModelConfig().temperature
