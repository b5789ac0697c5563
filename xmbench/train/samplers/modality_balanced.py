"""Batches balanced across availability patterns, for data whose items lack some modalities.

Items are grouped by the modalities they have (xmbench.data.missing.patterns: "text+image+audio",
"text+audio", …). Each pattern's share of a batch is proportional to (its item count)^alpha —
temperature sampling (Conneau et al. 2020, there across languages) across modality patterns:
alpha = 1 mirrors the data, alpha = 0 gives every pattern the same share, so a rare pattern (the
few complete items that alone carry the image–audio pair, say) is seen far more often than its
count. Within a pattern, items come in shuffled epochs, never twice in a batch.

Shares become whole rows by Hamilton's apportionment (floors, then the largest remainders; equal
remainders take turns, so with three equal patterns and 32 rows each gets 11, 11, 10 in rotation).
A pattern with fewer items than its quota gives them all; the rest goes to the others by share.
`last` holds the latest batch's rows per pattern name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np

from xmbench.lazy import torch
from xmbench.registry import SAMPLERS
from xmbench.schema import Range


@dataclass(frozen=True)
class ModalityBalancedOptions:
    """Attributes:
    alpha: a pattern's share of each batch ∝ (its items)^alpha; 1: as in the data, 0: every pattern alike.
    """

    alpha: Annotated[float, Range(0, 1)] = 0.0


class ModalityBalancedSampler:
    def __init__(self, pattern_of: np.ndarray, names: list[str], batch_size: int, seed: int,
                 options: ModalityBalancedOptions):
        self.names, self.batch_size = names, batch_size
        self.n_items = len(pattern_of)
        self.generator = torch.Generator().manual_seed(seed)
        self.groups = [torch.as_tensor(np.flatnonzero(pattern_of == p)) for p in range(len(names))]
        counts = np.array([len(g) for g in self.groups], dtype=np.float64)
        self.shares = counts ** options.alpha / (counts ** options.alpha).sum()
        self.batches = 0
        self.orders = [g[torch.randperm(len(g), generator=self.generator)] for g in self.groups]
        self.positions = [0] * len(names)
        self.last: dict[str, int] = {}

    def next(self):
        size = min(self.batch_size, self.n_items)
        quotas = self._quotas(size)
        self.last = dict(zip(self.names, quotas.tolist()))
        return torch.cat([self._take(p, int(k)) for p, k in enumerate(quotas)])

    def _quotas(self, size: int) -> np.ndarray:
        """Whole rows per pattern: the shares' floors, the rows left over to the largest remainders
        (Hamilton's apportionment; equal remainders take turns batch by batch, so no pattern is
        always the one rounded down), then what a pattern lacks the items for to the others by share."""
        exact = self.shares * size
        quotas = np.floor(exact).astype(np.int64)
        turn = (np.arange(len(quotas)) - self.batches) % len(quotas)
        order = sorted(range(len(quotas)), key=lambda p: (-round(float(exact[p] - quotas[p]), 9), turn[p]))
        quotas[order[:size - int(quotas.sum())]] += 1
        capacity = np.array([len(g) for g in self.groups])
        spare = int(np.maximum(quotas - capacity, 0).sum())
        quotas = np.minimum(quotas, capacity)
        for p in np.argsort(-self.shares, kind="stable"):
            extra = min(spare, int(capacity[p] - quotas[p]))
            quotas[p] += extra
            spare -= extra
        self.batches += 1
        return quotas

    def _take(self, pattern: int, count: int):
        """`count` items of a pattern from its shuffled epoch (a new epoch when this one runs short)."""
        group = self.groups[pattern]
        if self.positions[pattern] + count > len(group):
            self.orders[pattern] = group[torch.randperm(len(group), generator=self.generator)]
            self.positions[pattern] = 0
        start = self.positions[pattern]
        self.positions[pattern] += count
        return self.orders[pattern][start:start + count]

    def observe(self, rows, per_item_loss) -> None:
        """Balance by availability ignores per-item losses."""

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "orders": list(self.orders), "positions": list(self.positions),
                "batches": self.batches}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.orders, self.positions = list(state["orders"]), list(state["positions"])
        self.batches = state["batches"]


@SAMPLERS.register("modality_balanced", ModalityBalancedOptions)
def modality_balanced(split, batch_size: int, seed: int, options: ModalityBalancedOptions) -> ModalityBalancedSampler:
    """Batches balanced across the items' availability patterns (text+audio only, …): share ∝ count^alpha."""
    from xmbench.data.missing import patterns

    pattern_of, names = patterns(getattr(split, "present", None), len(split))
    return ModalityBalancedSampler(pattern_of, names, batch_size, seed, options)
