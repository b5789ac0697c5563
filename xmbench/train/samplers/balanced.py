"""Balanced batches: a set share of hard and of easy items by their EMA loss, the rest drawn uniformly.

Each item's difficulty is an exponential moving average of its loss (`per_item`, through
`observe`), as in the importance sampler. After the warm start, a batch of B items holds
round(hard_share · B) items drawn uniformly from the hard pool (the round(pool · observed), at
least one, observed items with the highest EMA), round(easy_share · B) items
drawn uniformly from the easy pool (as many with the lowest EMA), and the rest uniformly from
the other items; no item twice (halves round up; a pool smaller than its share gives all it has,
the rest is drawn uniformly). Before any item is observed every batch is uniform.

With `warm_start` the first batches walk one shuffled pass over every item (the batch that ends
the pass is completed uniformly). `last` holds the composition of the latest batch: {"hard": n, "easy": n}.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from xmbench.errors import ConfigError
from xmbench.lazy import torch
from xmbench.registry import SAMPLERS
from xmbench.schema import Range
from xmbench.train.samplers._difficulty import DifficultySampler, excluding, round_half_up

SHARE = Range(0, 1)


@dataclass(frozen=True)
class BalancedOptions:
    """Attributes:
    hard_share: share of each batch drawn from the hard pool.
    easy_share: share of each batch drawn from the easy pool (hard_share + easy_share <= 1).
    pool: share of the observed items that forms the hard pool (highest EMA loss), and as many the easy pool (lowest).
    ema: weight of an item's previous EMA when its new loss arrives (0: the last loss alone).
    warm_start: a first shuffled pass over every item before difficulty shapes the batches.
    """

    hard_share: Annotated[float, SHARE] = 0.25
    easy_share: Annotated[float, SHARE] = 0.25
    pool: Annotated[float, Range(0, 1, low_open=True)] = 0.25
    ema: Annotated[float, Range(0, 1, high_open=True)] = 0.9
    warm_start: bool = True

    def __post_init__(self):
        if self.hard_share + self.easy_share > 1:
            raise ConfigError(f"hard_share + easy_share must be <= 1, got {self.hard_share} + {self.easy_share}")


class BalancedSampler(DifficultySampler):
    def __init__(self, n_items: int, batch_size: int, seed: int, options: BalancedOptions):
        super().__init__(n_items, batch_size, seed, options)
        self.last = {"hard": 0, "easy": 0}

    def pools(self):
        """(hard pool, easy pool): observed items, highest EMA first / lowest first."""
        observed = self.difficulty.seen.nonzero()[:, 0]
        if len(observed) == 0:
            return observed, observed
        size = max(1, round_half_up(self.options.pool * len(observed)))
        order = observed[torch.argsort(self.difficulty.ema[observed], descending=True, stable=True)]
        return order[:size], order.flip(0)[:size]

    def _uniform(self, candidates, count: int):
        """`count` of the candidates (a 1-D tensor of rows), uniformly without replacement."""
        return candidates[torch.randperm(len(candidates), generator=self.generator)[:count]]

    def next(self):
        size = min(self.batch_size, self.n_items)
        self.last = {"hard": 0, "easy": 0}
        if not self.first.done:
            rows = self.first.take(size)
        else:
            hard_pool, easy_pool = self.pools()
            n_hard = min(round_half_up(self.options.hard_share * size), size)
            n_easy = min(round_half_up(self.options.easy_share * size), size - n_hard)
            hard = self._uniform(hard_pool, n_hard)
            easy_pool = easy_pool[excluding(self.n_items, hard)[easy_pool]]
            easy = self._uniform(easy_pool, n_easy)
            self.last = {"hard": len(hard), "easy": len(easy)}
            rows = torch.cat([hard, easy])
        rest = size - len(rows)
        if rest > 0:
            free = excluding(self.n_items, rows).nonzero()[:, 0]
            rows = torch.cat([rows, self._uniform(free, rest)])
        return rows

@SAMPLERS.register("balanced", BalancedOptions)
def balanced(split, batch_size: int, seed: int, options: BalancedOptions) -> BalancedSampler:
    """Batches with a set share of hard and of easy items by their EMA loss; the rest uniform."""
    return BalancedSampler(len(split), batch_size, seed, options)
