"""The linear projection head (CLIP's)."""
from __future__ import annotations

from xmbench.lazy import nn
from xmbench.registry import HEADS


@HEADS.register("linear")
def linear(in_dim: int, embed_dim: int, options):
    """One linear map into the shared space (CLIP's projection)."""
    return nn.Linear(in_dim, embed_dim)
