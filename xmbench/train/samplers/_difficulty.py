"""What the difficulty samplers share: each item's loss as an exponential moving average, and a first pass.

`Difficulty.observe(rows, losses)` updates the EMA of each observed item, e ← ema · e + (1 − ema) · loss,
starting from the item's first loss (non-finite losses are ignored). `FirstPass` hands out every
item once, in a shuffled order, so that every item is seen before difficulty decides (a warm start).
"""
from __future__ import annotations

from xmbench.lazy import torch


def round_half_up(x: float) -> int:
    import math

    return math.floor(x + 0.5)


class Difficulty:
    """Per-item EMA of the loss and whether each item was observed."""

    def __init__(self, n_items: int, ema: float):
        self.decay = ema
        self.ema = torch.zeros(n_items, dtype=torch.float64)
        self.seen = torch.zeros(n_items, dtype=torch.bool)

    def observe(self, rows, losses) -> None:
        rows = torch.as_tensor(rows).detach().cpu().long().reshape(-1)
        losses = torch.as_tensor(losses).detach().cpu().double().reshape(-1)
        if len(rows) != len(losses):
            raise ValueError(f"observe: {len(rows)} rows but {len(losses)} losses")
        keep = torch.isfinite(losses)
        rows, losses = rows[keep], losses[keep]
        if len(rows) == 0:
            return
        # an item twice in one call counts once, with its mean loss
        unique, inverse = torch.unique(rows, return_inverse=True)
        total = torch.zeros(len(unique), dtype=torch.float64).index_add_(0, inverse, losses)
        count = torch.zeros(len(unique), dtype=torch.float64).index_add_(0, inverse, torch.ones_like(losses))
        loss = total / count
        old = self.ema[unique]
        self.ema[unique] = torch.where(self.seen[unique], self.decay * old + (1 - self.decay) * loss, loss)
        self.seen[unique] = True

    def state_dict(self) -> dict:
        return {"ema": self.ema.clone(), "seen": self.seen.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.ema, self.seen = state["ema"].clone(), state["seen"].clone()


class FirstPass:
    """Every item once in a shuffled order, then nothing more (`done`)."""

    def __init__(self, n_items: int, generator, enabled: bool = True):
        self.order = torch.randperm(n_items, generator=generator) if enabled else torch.zeros(0, dtype=torch.long)
        self.position = 0

    @property
    def done(self) -> bool:
        return self.position >= len(self.order)

    def take(self, size: int):
        rows = self.order[self.position:self.position + size]
        self.position += len(rows)
        return rows

    def state_dict(self) -> dict:
        return {"order": self.order, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.order, self.position = state["order"], state["position"]


def excluding(n_items: int, chosen):
    """A bool mask of the items not in `chosen`."""
    free = torch.ones(n_items, dtype=torch.bool)
    free[chosen] = False
    return free


class DifficultySampler:
    """What the difficulty samplers hold alike: their generator, each item's EMA loss and the first pass;
    they observe per-item losses and checkpoint all three the same way. Subclasses draw (`next`)."""

    def __init__(self, n_items: int, batch_size: int, seed: int, options):
        self.n_items, self.batch_size, self.options = n_items, min(batch_size, n_items), options
        self.generator = torch.Generator().manual_seed(seed)
        self.difficulty = Difficulty(n_items, options.ema)
        self.first = FirstPass(n_items, self.generator, options.warm_start)

    def observe(self, rows, per_item_loss) -> None:
        self.difficulty.observe(rows, per_item_loss)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "difficulty": self.difficulty.state_dict(),
                "first": self.first.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.difficulty.load_state_dict(state["difficulty"])
        self.first.load_state_dict(state["first"])
