"""Shuffled epochs: every item once per epoch, never twice in a batch (the reference)."""
from __future__ import annotations

from xmbench.lazy import torch
from xmbench.registry import SAMPLERS


class EpochSampler:
    """Item rows in shuffled epochs, so a batch never holds the same item twice."""

    def __init__(self, n_items: int, batch_size: int, seed: int):
        self.n_items, self.batch_size = n_items, min(batch_size, n_items)
        self.generator = torch.Generator().manual_seed(seed)
        self.order, self.position = torch.randperm(n_items, generator=self.generator), 0

    def next(self):
        size = min(self.batch_size, self.n_items)
        if self.position + size > self.n_items:
            self.order, self.position = torch.randperm(self.n_items, generator=self.generator), 0
        rows = self.order[self.position:self.position + size]
        self.position += size
        return rows

    def observe(self, rows, per_item_loss) -> None:
        """Shuffled epochs ignore per-item statistics."""

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "order": self.order, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.order, self.position = state["order"], state["position"]


@SAMPLERS.register("epoch")
def epoch(split, batch_size: int, seed: int, options) -> EpochSampler:
    """Shuffled epochs: each item once per epoch, never twice in a batch."""
    return EpochSampler(len(split), batch_size, seed)
