"""Hard-negative mining: every N steps, each item's nearest other items under the current model.

At every step s with s % every == 0 (before the step's batch is drawn), the training split is
encoded in one modality (`modality`; text: each item's first caption) with the current model, in
eval mode and without gradients. A split larger than `max_items` is mined on a random subset of
that many items (drawn from (seed, step)): their neighbours are found among themselves and the
other items get none; so do items that lack the modality (xmbench.data.missing). Each item's k
nearest other items by the model's similarity (the dot product of the normalised embeddings, or the
model's `score`) are handed to the sampler,
`sampler.set_neighbours((items, k) rows, −1 where unknown)`, when it takes them (the
`hard_negatives` sampler builds batches of anchors and their neighbours); with another sampler
mining only measures.

How well the mined neighbours find the data's known hard negatives (`split.hard_negative_of`:
item i was derived from item h[i] by one change): over every ordered pair (i, h[i]) and (h[i], i)
of mined items, the share whose second item is among the first's k neighbours, "mining_recall",
against what k random other items would give, "chance" = k / (n − 1) (n mined items).

In `state.notes` (kept until the next mining): `mine_negatives/mined_at` (the step),
`mine_negatives/items` (n), `mine_negatives/mining_recall` (None when the split knows no hard
negatives among the mined items), `mine_negatives/chance` and `mine_negatives/relations` (how many
ordered pairs the recall is over).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from xmbench.config import PositiveInt
from xmbench.errors import ConfigError
from xmbench.lazy import torch
from xmbench.registry import CALLBACKS
from xmbench.train.hooks import Callback

KEY = "mine_negatives"


@dataclass(frozen=True)
class MineNegativesOptions:
    """Attributes:
    every: steps between two minings (the first at step 0).
    k: neighbours mined per item.
    modality: the modality the items are encoded in (text: each item's first caption).
    max_items: the most items mined at once; a larger split is mined on a random subset of this many.
    batch_size: rows encoded at a time.
    """

    every: PositiveInt = 50
    k: PositiveInt = 4
    modality: Literal["text", "image", "audio"] = "image"
    max_items: PositiveInt = 2048
    batch_size: PositiveInt = 64


def encode_items(model, split, modality: str, items, batch_size: int = 64):
    """(len(items), dim) embeddings of these items in eval mode without gradients (text: first captions)."""
    from xmbench.models import capabilities
    from xmbench.models.model import to_device

    rows = split.caption_offsets[items] if modality == "text" else items
    device = capabilities.device_of(model)
    was_training = capabilities.set_training(model, False)
    try:
        with torch.no_grad():
            chunks = [capabilities.encode(model, modality, to_device(split.rows(modality, rows[i:i + batch_size]), device))
                      for i in range(0, len(rows), batch_size)]
    finally:
        if was_training:
            capabilities.set_training(model, True)
    return torch.cat(chunks).float()


def nearest(model, modality: str, embeddings, k: int):
    """(rows, k) positions of each row's k most similar other rows, most similar first."""
    from xmbench.models import capabilities

    with torch.no_grad():
        similarity = capabilities.similarity(model, modality, embeddings, modality, embeddings).float()
        similarity.fill_diagonal_(float("-inf"))
        return similarity.topk(k, dim=1).indices.cpu()


def recall(neighbours, hard_negative_of, mined) -> tuple[float | None, int]:
    """(share of the known hard-negative relations, both ways, whose partner is among the neighbours; their count)."""
    if hard_negative_of is None:
        return None, 0
    inside = set(mined)
    relations = [(i, j) for i in mined for j in [hard_negative_of[i]] if j >= 0 and j != i and j in inside]
    relations += [(j, i) for i, j in relations]
    if not relations:
        return None, 0
    hits = sum(1 for i, j in relations if j in set(neighbours[i]))
    return hits / len(relations), len(relations)


class MineNegatives(Callback):
    def __init__(self, options: MineNegativesOptions):
        self.options = options

    def on_train_start(self, state) -> None:
        split = state.split
        if split is not None and self.options.modality not in split.modalities:
            raise ConfigError(f"train.callbacks.{KEY}.modality: the training split has no {self.options.modality} "
                              f"(it has {', '.join(split.modalities)})")
        if split is not None and len(split) < 2:
            raise ConfigError(f"train.callbacks.{KEY}: mining needs at least 2 training items")

    def on_step_start(self, state) -> None:
        if state.step % self.options.every == 0:
            self.mine(state)

    def subset(self, n: int, state):
        """The mined items: all of them, or a random `max_items` of them drawn from (seed, step), in order."""
        if n <= self.options.max_items:
            return torch.arange(n)
        generator = torch.Generator().manual_seed(state.seed * 1_000_003 + state.step)
        return torch.sort(torch.randperm(n, generator=generator)[:self.options.max_items]).values

    def mine(self, state):
        """Mine every item's neighbours now; returns the (items, k) neighbours given to the sampler."""
        split, n = state.split, len(state.split)
        items = self.subset(n, state)
        present = (getattr(split, "present", None) or {}).get(self.options.modality)
        if present is not None:  # an item without the modality has no neighbours and is nobody's
            items = items[present[items]]
        k = min(self.options.k, len(items) - 1)
        embeddings = encode_items(state.model, split, self.options.modality, items, self.options.batch_size)
        found = items[nearest(state.model, self.options.modality, embeddings, k)]  # item rows
        neighbours = torch.full((n, k), -1, dtype=torch.long)
        neighbours[items] = found
        if callable(getattr(state.sampler, "set_neighbours", None)):
            state.sampler.set_neighbours(neighbours)
        mined = items.tolist()
        share, relations = recall(neighbours.tolist(), split.hard_negative_of, mined)
        state.notes.update({f"{KEY}/mined_at": state.step, f"{KEY}/items": len(mined),
                            f"{KEY}/mining_recall": share, f"{KEY}/chance": k / (len(mined) - 1),
                            f"{KEY}/relations": relations})
        return neighbours


@CALLBACKS.register(KEY, MineNegativesOptions)
def mine_negatives(options: MineNegativesOptions):
    """Every N steps, mine each item's nearest other items with the current model and give them to the sampler."""
    return MineNegatives(options)
