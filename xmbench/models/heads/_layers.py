"""Layers of the projection heads (torch: imported by the head builders, never at registration)."""
from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh}


def activation(name: str, dropout: float = 0.0) -> nn.Module:
    """The named activation, followed by dropout when `dropout` > 0.

    One parameter-free module either way, so a head's parameter names (and saved weights)
    do not depend on whether it drops out.
    """
    layer = ACTIVATIONS[name]()
    return nn.Sequential(layer, nn.Dropout(dropout)) if dropout > 0 else layer


class ResidualBlock(nn.Module):
    """x + Linear(hidden → d)(Dropout(GELU(Linear(d → hidden)(LayerNorm(x))))): a pre-norm residual MLP block."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.up = nn.Linear(dim, hidden)
        self.act = activation("gelu", dropout)
        self.down = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(self.act(self.up(self.norm(x))))


class ResidualMLP(nn.Module):
    """`blocks` residual blocks at the tower's width, then the linear map into the shared space.

    The projection is registered last: it is the head's last Linear, the one
    `projection_weights` (orthogonality regularisers) reads.
    """

    def __init__(self, in_dim: int, embed_dim: int, blocks: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.blocks = nn.Sequential(*(ResidualBlock(in_dim, hidden, dropout) for _ in range(blocks)))
        self.projection = nn.Linear(in_dim, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.blocks(x))
