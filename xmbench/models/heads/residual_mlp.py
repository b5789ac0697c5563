"""A deeper projection head: residual MLP blocks at the tower's width, then the linear map."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from xmbench.registry import HEADS
from xmbench.schema import POSITIVE, PROBABILITY


@dataclass(frozen=True)
class ResidualMlpOptions:
    """Attributes:
    blocks: residual blocks before the projection, each x + Linear(GELU(Linear(LayerNorm(x)))).
    hidden: width inside each block; unset: the input width.
    dropout: dropout on each block's hidden activations while training (0: none).
    """

    blocks: Annotated[int, POSITIVE] = 2
    hidden: Annotated[int, POSITIVE] | None = None
    dropout: Annotated[float, PROBABILITY] = 0.0


@HEADS.register("residual_mlp", ResidualMlpOptions)
def residual_mlp(in_dim: int, embed_dim: int, options: ResidualMlpOptions):
    """Pre-LayerNorm residual MLP blocks (GELU) at the input width, then one linear map into the shared space."""
    from xmbench.models.heads._layers import ResidualMLP

    return ResidualMLP(in_dim, embed_dim, options.blocks, options.hidden or in_dim, options.dropout)
