"""Registered projection heads: tower features → the shared embedding space."""
from __future__ import annotations

from torch import nn

from xmbench.registry import HEADS


@HEADS.register("linear")
def linear(in_dim: int, embed_dim: int) -> nn.Module:
    """One linear map into the shared space (CLIP's projection)."""
    return nn.Linear(in_dim, embed_dim)


@HEADS.register("mlp")
def mlp(in_dim: int, embed_dim: int) -> nn.Module:
    """Two-layer MLP with GELU, hidden width = input width."""
    return nn.Sequential(nn.Linear(in_dim, in_dim), nn.GELU(), nn.Linear(in_dim, embed_dim))
