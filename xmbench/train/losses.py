"""Registered contrastive losses over the modality pairs of a batch.

A loss takes {modality: (B, D) normalised embeddings}, the logit scale and the pairs to align,
and returns (total loss, {pair name: loss}); row i of every modality is the same item.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from xmbench.registry import LOSSES


@LOSSES.register("infonce")
def infonce(embeddings: dict[str, torch.Tensor], logit_scale: torch.Tensor,
            pairs: list[tuple[str, str]]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Symmetric InfoNCE (CLIP): cross-entropy both ways over in-batch negatives, mean over pairs."""
    parts = {}
    for a, b in pairs:
        logits = logit_scale * embeddings[a] @ embeddings[b].T
        target = torch.arange(len(logits), device=logits.device)
        parts[f"{a}-{b}"] = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    return torch.stack(list(parts.values())).mean(), parts
