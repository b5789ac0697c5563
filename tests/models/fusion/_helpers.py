"""Shared by the fusion tests: a tiny fused config, and the fused branch moved off its zero initialisation."""
import torch

from xmbench.config import resolve

MODALITIES = ("text", "image", "audio")


def fused_config(tiny_base, fusion: dict):
    """The tiny config with `model.fusion = fusion`, 3 steps and no validation."""
    return resolve(tiny_base, {"model.fusion": fusion, "train": {"steps": 3, "eval_every": 0}})


def perturb(model):
    """The fused branch away from its zero initialisation (f starts at exactly 0)."""
    with torch.no_grad():
        for p in model.fusion.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.5)
    return model
