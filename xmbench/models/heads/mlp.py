"""A two-layer MLP projection head."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from xmbench.lazy import nn
from xmbench.registry import HEADS
from xmbench.schema import POSITIVE, PROBABILITY


@dataclass(frozen=True)
class MlpOptions:
    """Attributes:
    hidden: width of the hidden layer; unset: the input width.
    activation: the nonlinearity after the hidden layer: gelu, relu, silu or tanh.
    dropout: dropout on the hidden activations while training (0: none).
    """

    hidden: Annotated[int, POSITIVE] | None = None
    activation: Literal["gelu", "relu", "silu", "tanh"] = "gelu"
    dropout: Annotated[float, PROBABILITY] = 0.0


@HEADS.register("mlp", MlpOptions)
def mlp(in_dim: int, embed_dim: int, options: MlpOptions):
    """Two-layer MLP: Linear, activation (GELU by default), dropout, Linear (hidden width: the input width unless set)."""
    from xmbench.models.heads._layers import activation

    hidden = options.hidden or in_dim
    # Parameters at indices 0 and 2 whatever the options: weights saved with the plain MLP still load.
    return nn.Sequential(nn.Linear(in_dim, hidden), activation(options.activation, options.dropout),
                         nn.Linear(hidden, embed_dim))
