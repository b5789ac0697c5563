"""Shared by the augmentation tests: a tiny built-in split, batches of it, and the registered builders."""
from __future__ import annotations

import functools

import torch

from xmbench.config import DataConfig
from xmbench.registry import AUGMENTATIONS
from xmbench.train.step import Batch

# 0.5 s clips at 16 kHz, 32 × 32 images, 32 mel bins: small enough to build in a second
TINY = dict(n_train=12, n_val=4, n_test=4, image_size=32, audio_seconds=0.5, n_mels=32)


@functools.lru_cache(maxsize=4)
def tiny_split(domain: str = "source", **changes):
    from xmbench.data.sources import load_split

    return load_split(DataConfig(domain=domain, **{**TINY, **changes}), "train")


def batch_of(split, items, caption: int = 0, modalities=("text", "image", "audio")) -> Batch:
    """The batch of these items (their `caption`-th caption each), as the engine makes it."""
    items = torch.as_tensor(items)
    rows = {m: split.caption_offsets[items] + caption if m == "text" else items for m in modalities}
    return Batch({m: split.rows(m, rows[m]) for m in modalities}, dict.fromkeys(modalities, items))


def build(name: str, split, **options):
    return AUGMENTATIONS.bind(AUGMENTATIONS.default(name, **options))(split)


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def same_batches(x: Batch, y: Batch) -> bool:
    return (x.inputs.keys() == y.inputs.keys()
            and all(x.inputs[m].keys() == y.inputs[m].keys() and all(torch.equal(x.inputs[m][k], y.inputs[m][k])
                                                                    for k in x.inputs[m]) for m in x.inputs)
            and all(torch.equal(x.item_ids[m], y.item_ids[m]) for m in x.item_ids))
