"""The torch modules of the adapters written here (peft has none of them); builders import this module.

`Bottleneck` is down (d → d/r) → activation → up (d/r → d) with the up-projection zero-initialised.
`SerialAdapter` wraps a sublayer's output projection (y ↦ y + bottleneck(y)); `ParallelAdapter`
wraps a whole sublayer (its output gains s · bottleneck(x) of the sublayer's input x);
`GatedLoraLinear` is a LoRA update with a gate on each rank (SoRA). `replace_module` puts a
wrapper where the wrapped module was, so the backbone's own forward runs through it.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu, "silu": F.silu, "tanh": torch.tanh}


def _like(module: nn.Module) -> dict:
    """device and dtype of a module's first parameter (a wrapper's new weights live with the wrapped ones)."""
    first = next(module.parameters(), None)
    return {} if first is None else {"device": first.device, "dtype": first.dtype}


def replace_module(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, child, new)


class Bottleneck(nn.Module):
    """up(act(down(x))): d → max(1, d // reduction) → d; up starts at zero, so the adapter starts at 0."""

    def __init__(self, dim: int, reduction: int, activation: str = "relu", **like):
        super().__init__()
        width = max(1, dim // reduction)
        self.down = nn.Linear(dim, width, **like)
        self.up = nn.Linear(width, dim, **like)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(ACTIVATIONS[self.activation](self.down(x)))


class SerialAdapter(nn.Module):
    """A bottleneck after a linear output projection, residual inside: y = base(x); y + bottleneck(y)."""

    def __init__(self, base: nn.Linear, reduction: int, activation: str = "relu"):
        super().__init__()
        self.base = base
        self.adapter = Bottleneck(base.out_features, reduction, activation, **_like(base))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        return y + self.adapter(y)


class ParallelAdapter(nn.Module):
    """A bottleneck beside a whole sublayer f, fed the sublayer's input x: f(x) + s · bottleneck(x).

    `into = "output"` (pre-LN ViT/AST: `attention`, `mlp`): the first output of `base(x, ...)`
    gains s · bottleneck(x). `into = "residual"` (post-LN BERT: `attention.output`, `output`, whose
    forward is `LayerNorm(dropout(dense(h)) + x)` with x the sublayer's input, passed as
    `input_tensor`): x + s · bottleneck(x) is passed instead, which adds s · bottleneck(x) before
    the LayerNorm, exactly where the sublayer's own output joins the residual stream.
    """

    def __init__(self, base: nn.Module, dim: int, reduction: int, activation: str = "relu", scale: float = 1.0,
                 learn_scale: bool = False, into: str = "output"):
        super().__init__()
        if into not in ("output", "residual"):
            raise ValueError(f"into: 'output' or 'residual', got {into!r}")
        self.base = base
        like = _like(base)
        self.adapter = Bottleneck(dim, reduction, activation, **like)
        self.into = into
        if learn_scale:
            self.scale = nn.Parameter(torch.tensor(float(scale), **like))
        else:
            self.scale = float(scale)

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.adapter(x)

    def forward(self, hidden_states, *args, **kwargs):
        if self.into == "residual":
            if "input_tensor" in kwargs:
                kwargs["input_tensor"] = kwargs["input_tensor"] + self.delta(kwargs["input_tensor"])
            else:
                args = (args[0] + self.delta(args[0]), *args[1:])
            return self.base(hidden_states, *args, **kwargs)
        out = self.base(hidden_states, *args, **kwargs)
        if isinstance(out, tuple):
            return (out[0] + self.delta(hidden_states), *out[1:])
        return out + self.delta(hidden_states)


class GatedLoraLinear(nn.Module):
    """y = base(x) + (alpha / rank) · B · diag(gate) · A · dropout(x) (SoRA; see sora.py).

    A (rank × in) has peft's LoRA init (Kaiming-uniform), B (out × rank) starts at zero and the
    gate at one: training starts from the unadapted layer, as plain LoRA with scale alpha/rank.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        like = _like(base)
        self.base = base
        self.rank = rank
        self.scaling = alpha / rank
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.sora_A = nn.Parameter(torch.empty(rank, base.in_features, **like))
        nn.init.kaiming_uniform_(self.sora_A, a=math.sqrt(5))
        self.sora_B = nn.Parameter(torch.zeros(base.out_features, rank, **like))
        self.gate = nn.Parameter(torch.ones(rank, **like))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ranks = F.linear(self.dropout(x), self.sora_A) * self.gate
        return self.base(x) + F.linear(ranks, self.sora_B) * self.scaling

    def delta_weight(self) -> torch.Tensor:
        """The update to base.weight: (alpha / rank) · B · diag(gate) · A."""
        return (self.sora_B * self.gate) @ self.sora_A * self.scaling

    def live_ranks(self) -> int:
        """Ranks whose gate is not exactly zero: the effective rank."""
        return int(torch.count_nonzero(self.gate.detach()))

    @torch.no_grad()
    def prune(self) -> None:
        """Zero A's rows and B's columns of the ranks whose gate is zero (they contribute nothing either way)."""
        dead = self.gate == 0
        self.sora_A[dead] = 0
        self.sora_B[:, dead] = 0
