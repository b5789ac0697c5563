"""Items without some modality: which ones, and the availability patterns a sampler can balance.

Real multi-modal data is ragged: a clip with a caption but no image, a photo with no sound. A
split says per item which modalities it has (`present`: modality → bool per item, None when every
item has every modality); an absent row holds zeros and is never encoded for training. Training
takes each modality pair over the batch rows that have both (xmbench.train.step).

The built-in set drops modalities from its training split on request (`data.missing`), so the
same test queries measure what ragged training costs and what balancing wins back.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from xmbench.config import MODALITIES
from xmbench.data.split import RawSplit

MISSING_SEED = 7  # a stream of its own: dropping modalities leaves the scenes' draws unchanged


def drop_modalities(raw: RawSplit, shares: dict[str, float], seed: int) -> RawSplit:
    """The split with round(share · N) items losing each modality, chosen without overlap (so every
    item keeps the other two), from the data seed; the dropped rows are zeroed."""
    n = len(raw)
    order = np.random.default_rng([seed, MISSING_SEED]).permutation(n)
    present, start = {}, 0
    arrays = {"image": raw.images, "audio": raw.audio}
    captions = raw.captions
    for modality in MODALITIES:
        count = int(np.floor(shares.get(modality, 0.0) * n + 0.5))
        dropped = np.sort(order[start:start + count])
        start += count
        mask = np.ones(n, dtype=bool)
        mask[dropped] = False
        present[modality] = mask
        if modality in arrays and arrays[modality] is not None and count:
            arrays[modality] = arrays[modality].copy()
            arrays[modality][dropped] = 0
        if modality == "text" and captions is not None and count:
            captions = [c if keep else [""] * len(c) for c, keep in zip(captions, mask)]
    return replace(raw, captions=captions, images=arrays["image"], audio=arrays["audio"], present=present)


def patterns(present: dict | None, n_items: int, modalities=MODALITIES) -> tuple[np.ndarray, list[str]]:
    """(each item's pattern number, the patterns' names such as "text+audio"): items that have the
    same modalities (of `modalities`) share a pattern."""
    if not present:
        return np.zeros(n_items, dtype=np.int64), ["+".join(modalities)]
    has = np.stack([np.asarray(present[m], dtype=bool) if m in present else np.ones(n_items, bool)
                    for m in modalities], axis=1)
    keys, numbers = np.unique(has, axis=0, return_inverse=True)
    names = ["+".join(m for m, on in zip(modalities, key) if on) for key in keys]
    return numbers.reshape(-1), names
