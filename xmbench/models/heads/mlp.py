"""A two-layer MLP projection head."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from xmbench.lazy import nn
from xmbench.registry import HEADS
from xmbench.schema import POSITIVE


@dataclass(frozen=True)
class MlpOptions:
    """Attributes:
    hidden: width of the hidden layer; unset: the input width.
    """

    hidden: Annotated[int, POSITIVE] | None = None


@HEADS.register("mlp", MlpOptions)
def mlp(in_dim: int, embed_dim: int, options: MlpOptions):
    """Two-layer MLP with GELU (hidden width: the input width unless set)."""
    hidden = options.hidden or in_dim
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, embed_dim))
