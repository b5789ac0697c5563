"""Importance sampling by per-item difficulty: items drawn with probability ∝ (EMA of their loss + floor)^alpha.

Each item's difficulty is an exponential moving average of its loss (the loss's `per_item`, seen
through `observe`): e ← ema · e + (1 − ema) · loss, starting at the item's first loss. A batch of
B items is drawn without replacement (torch.multinomial, the sampler's own seeded generator)
with weights w_i = (e_i + floor)^alpha; an item not observed yet weighs the mean weight of the
observed ones (all items weigh the same while none is). alpha = 0 is uniform sampling.

With `warm_start` the first batches walk one shuffled pass over every item (a batch that ends
the pass is completed by weighted draws), so that every item has a loss before weights decide.
No importance weights correct the loss for the bias of the draws (the loss has no per-row weights).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from xmbench.lazy import torch
from xmbench.registry import SAMPLERS
from xmbench.schema import NON_NEGATIVE, POSITIVE, Range
from xmbench.train.samplers._difficulty import DifficultySampler, excluding


@dataclass(frozen=True)
class ImportanceOptions:
    """Attributes:
    alpha: sharpness: weights (EMA loss + floor)^alpha; 0 samples uniformly.
    ema: weight of an item's previous EMA when its new loss arrives (0: the last loss alone).
    floor: added to every EMA so that no item's probability falls to 0.
    warm_start: a first shuffled pass over every item before difficulty weighs the draws.
    """

    alpha: Annotated[float, NON_NEGATIVE] = 1.0
    ema: Annotated[float, Range(0, 1, high_open=True)] = 0.9
    floor: Annotated[float, POSITIVE] = 0.1
    warm_start: bool = True


class ImportanceSampler(DifficultySampler):
    def weights(self):
        """(items,) unnormalised sampling weights."""
        seen = self.difficulty.seen
        if not seen.any():
            return torch.ones(self.n_items, dtype=torch.float64)
        weights = (self.difficulty.ema.clamp(min=0) + self.options.floor) ** self.options.alpha
        return torch.where(seen, weights, weights[seen].mean())

    def probabilities(self):
        """Each item's probability of being the first draw of a batch."""
        weights = self.weights()
        return weights / weights.sum()

    def next(self):
        size = min(self.batch_size, self.n_items)
        rows = self.first.take(size) if not self.first.done else torch.zeros(0, dtype=torch.long)
        rest = size - len(rows)
        if rest > 0:
            weights = self.weights() * excluding(self.n_items, rows)
            drawn = torch.multinomial(weights, rest, replacement=False, generator=self.generator)
            rows = torch.cat([rows, drawn])
        return rows

@SAMPLERS.register("importance", ImportanceOptions)
def importance(split, batch_size: int, seed: int, options: ImportanceOptions) -> ImportanceSampler:
    """Importance sampling: items drawn without replacement with probability ∝ (EMA of their loss + floor)^alpha."""
    return ImportanceSampler(len(split), batch_size, seed, options)
