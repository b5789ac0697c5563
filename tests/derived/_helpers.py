"""Shared by the derived-run tests: tiny reference models built directly (no training), and hand computations."""
from __future__ import annotations

import torch

from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.eval.retrieval import direction_modalities, encode_split, evaluate_scores
from xmbench.models.reference import build_reference

MODALITIES = ("text", "image", "audio")
DIRECTIONS = ("t2i", "i2t", "t2a", "a2t", "i2a", "a2i")


def member(tiny_base, seed: int = 0, perturb: int | None = None, **overrides):
    """A tiny reference model built with torch seed `seed` (towers and adapter init), in eval mode.

    `perturb`: the trainable tensors (adapters, heads, temperature) moved by noise drawn with that seed,
    so that members built from one seed differ like variants fine-tuned from one foundation.
    """
    config = resolve(tiny_base, overrides) if overrides else resolve(tiny_base)
    torch.manual_seed(seed)
    model = build_reference(config, MODALITIES).eval()
    if perturb is not None:
        generator = torch.Generator().manual_seed(perturb)
        with torch.no_grad():
            for _, p in model.named_parameters():
                if p.requires_grad:
                    p.add_(0.2 * torch.randn(p.shape, generator=generator))
    return model


def split(tiny_base, name: str = "test"):
    return load_split(resolve(tiny_base).data, name)


def embeddings(model, data) -> dict[str, torch.Tensor]:
    return {m: encode_split(model, data, m) for m in MODALITIES}


def metrics_of_scores(scores: dict[str, torch.Tensor], data) -> dict:
    """{direction: metrics} of hand-computed score matrices."""
    out = {}
    for direction, matrix in scores.items():
        q, g = direction_modalities(direction)
        out[direction] = evaluate_scores(matrix, data.row_ids(q), data.row_ids(g))
    return out


def assert_same_metrics(actual: dict, expected: dict, tolerance: float = 1e-6) -> None:
    for direction, metrics in expected.items():
        for name in ("R@1", "R@5", "mAP", "MRR"):
            assert abs(actual[direction][name] - metrics[name]) <= tolerance, (direction, name)
