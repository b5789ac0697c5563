"""Batches of anchors and their mined nearest neighbours: in-batch negatives that the model confuses.

Anchors come in shuffled epochs (each item once per epoch, as the epoch sampler). After each
anchor, up to `per_anchor` of its mined neighbours (nearest first) join the batch, until it holds
B items; an item is never twice in a batch (a neighbour already in it is skipped, an anchor
already in it as a neighbour is passed over). Neighbours come from `set_neighbours(neighbours)`:
an (items, k) tensor of item rows, −1 where unknown — the `mine_negatives` callback mines them
with the current model every N steps. Until then, and for anchors without neighbours, batches
are plain shuffled epochs.

`last` holds the latest batch's anchors and neighbours: {"anchors": [...], "neighbours": [...]}.
The mined neighbours are part of the sampler's state (a resumed run keeps them).
"""
from __future__ import annotations

from dataclasses import dataclass

from xmbench.config import PositiveInt
from xmbench.lazy import torch
from xmbench.registry import SAMPLERS


@dataclass(frozen=True)
class HardNegativesOptions:
    """Attributes:
    per_anchor: mined neighbours that follow each anchor into the batch (nearest first).
    """

    per_anchor: PositiveInt = 1


class HardNegativeSampler:
    def __init__(self, n_items: int, batch_size: int, seed: int, options: HardNegativesOptions):
        self.n_items, self.batch_size, self.options = n_items, min(batch_size, n_items), options
        self.generator = torch.Generator().manual_seed(seed)
        self.order, self.position = torch.randperm(n_items, generator=self.generator), 0
        self.neighbours = torch.full((n_items, 0), -1, dtype=torch.long)
        self.last = {"anchors": [], "neighbours": []}

    def set_neighbours(self, neighbours) -> None:
        """(items, k) item rows of each item's nearest other items, nearest first; −1 where unknown."""
        neighbours = torch.as_tensor(neighbours).detach().cpu().long()
        if neighbours.ndim != 2 or len(neighbours) != self.n_items:
            raise ValueError(f"set_neighbours: expected ({self.n_items}, k) rows, got {tuple(neighbours.shape)}")
        self.neighbours = neighbours

    def _anchor(self) -> int:
        if self.position >= self.n_items:
            self.order, self.position = torch.randperm(self.n_items, generator=self.generator), 0
        self.position += 1
        return int(self.order[self.position - 1])

    def next(self):
        size = min(self.batch_size, self.n_items)
        mined = self.neighbours[:, :self.options.per_anchor].tolist() if self.neighbours.shape[1] else None
        rows, inside, anchors, added = [], set(), [], []
        while len(rows) < size:
            anchor = self._anchor()
            if anchor in inside:
                continue
            rows.append(anchor)
            inside.add(anchor)
            anchors.append(anchor)
            for neighbour in (mined[anchor] if mined else ()):
                if len(rows) >= size:
                    break
                if neighbour >= 0 and neighbour not in inside:
                    rows.append(neighbour)
                    inside.add(neighbour)
                    added.append(neighbour)
        self.last = {"anchors": anchors, "neighbours": added}
        return torch.tensor(rows, dtype=torch.long)

    def observe(self, rows, per_item_loss) -> None:
        """Mined neighbours, not per-item losses, shape these batches."""

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "order": self.order, "position": self.position,
                "neighbours": self.neighbours}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.order, self.position, self.neighbours = state["order"], state["position"], state["neighbours"]


@SAMPLERS.register("hard_negatives", HardNegativesOptions)
def hard_negatives(split, batch_size: int, seed: int, options: HardNegativesOptions):
    """Anchors in shuffled epochs, each followed by its mined nearest neighbours (see the mine_negatives callback)."""
    return HardNegativeSampler(len(split), batch_size, seed, options)
