"""Synthetic hard negatives: new items spliced from the left half of one batch item and the right half of another.

For `round(share · rows)` pairs of different items (A, B) of the batch, a mixed item M is added:
its image is A's left W/2 columns beside B's right ones, and its audio A's first N/2 samples
followed by B's last ones (the raw waveforms, loaded once at build; the log-mel recomputed with
the Preprocessor's mel transform). The image's left-to-right axis being the audio's time axis on
the built-in data, the two halves are the same split of the scene in both. M gets a NEW item id
(above every dataset row and every id already in the batch), the same in its image and audio
rows: those are positives of each other, and of nothing else. M has no caption: its image and
audio rows are appended after the batch's rows, and the text rows stay as they are, so every
caption of A and of B meets M as an extra negative that shares half its content.

Exactness on the built-in data: with two objects per scene, each object and its tone burst lie
wholly in one half (objects at 1/4 and 3/4 of the width, radius at most 0.16 of it; the first
burst ends before half the clip, the second starts after), so M is exactly the scene "A's left
object, B's right object". With one or three objects the middle object is cut in two: M is then
a collage, still no item's positive. A mix can equal a parent when A and B share the half taken
from B (about 1 in 60 two-object pairs by chance): pairs of the same item, and the data's known
hard-negative pairs (split.hard_negative_of, one attribute changed), are not mixed.

Losses: the batch then holds more image and audio rows than text rows. Losses that match rows by
item id (supcon, siglip, triplet) use the extra rows as negatives; those that pair row i with row
i (infonce, hn_infonce, mixup) cannot take such a batch, and fail on its shapes.
Draws: a permutation of the batch's rows, from the run's generator.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from xmbench.errors import ConfigError
from xmbench.registry import AUGMENTATIONS
from xmbench.schema import Range


@dataclass(frozen=True)
class MixNegativesOptions:
    """Attributes:
    share: mixed items added per batch, as a share of its rows (rounded).
    """

    share: Annotated[float, Range(0, 1)] = 0.25


class MixNegatives:
    def __init__(self, split, options: MixNegativesOptions):
        from xmbench.data.augment import _shared

        self.has_image = getattr(split, "image", None) is not None
        self.has_audio = getattr(split, "audio", None) is not None
        if not (self.has_image or self.has_audio):
            raise ConfigError("train.augment: mix_negatives needs images or audio in the training split")
        self.share = options.share
        self.cfg = _shared.data_config(split, "mix_negatives")
        self.raw = _shared.raw_audio(split, "mix_negatives") if self.has_audio else None
        self.n_items = len(split)
        self.related = set()
        for item, parent in enumerate(getattr(split, "hard_negative_of", None) or []):
            if parent >= 0:
                self.related |= {(item, parent), (parent, item)}

    def pairs(self, ids, generator):
        """(first rows, second rows) of the pairs to mix: distinct items, not known hard negatives of each other."""
        from xmbench.lazy import torch

        rows = len(ids)
        order = torch.randperm(rows, generator=generator)
        count = min(int(round(self.share * rows)), rows) if rows > 1 else 0
        first, second = order[:count], order.roll(-1)[:count]
        keep = [i for i, (a, b) in enumerate(zip(ids[first].tolist(), ids[second].tolist()))
                if a != b and (a, b) not in self.related]
        return first[keep], second[keep]

    def __call__(self, batch, generator):
        from xmbench.data.augment import _shared
        from xmbench.lazy import torch

        modalities = [m for m in ("image", "audio") if m in batch.inputs and (m != "audio" or self.raw is not None)]
        if not modalities:
            return batch
        ids = batch.item_ids[modalities[0]].cpu()
        if len(modalities) == 2 and not torch.equal(ids, batch.item_ids["audio"].cpu()):
            raise ValueError("mix_negatives: the image and audio rows of the batch are not the same items")
        first, second = self.pairs(ids, generator)
        if not len(first):
            return batch
        top = max([self.n_items - 1] + [int(v.max()) for v in batch.item_ids.values() if len(v)])
        new_ids = torch.arange(top + 1, top + 1 + len(first), dtype=ids.dtype)
        inputs, item_ids, extra = {}, {}, {}
        if "image" in modalities:
            pixels = batch.inputs["image"]["pixel_values"]
            half = pixels.shape[-1] // 2
            index_a, index_b = first.to(pixels.device), second.to(pixels.device)
            mixed = torch.cat([pixels[index_a][..., :half], pixels[index_b][..., half:]], dim=-1)
            inputs["image"] = {**batch.inputs["image"], "pixel_values": torch.cat([pixels, mixed])}
            item_ids["image"] = torch.cat([batch.item_ids["image"], new_ids.to(batch.item_ids["image"].device)])
        if "audio" in modalities:
            wave = _shared.waveforms(batch, self.raw, "mix_negatives")
            half = wave.shape[-1] // 2
            mixed_wave = torch.cat([wave[first][:, :half], wave[second][:, half:]], dim=-1)
            key = _shared.audio_key(self.cfg)
            old = batch.inputs["audio"][key]
            logmel = _shared.log_mel(mixed_wave, self.cfg).to(device=old.device, dtype=old.dtype)
            inputs["audio"] = {**batch.inputs["audio"], key: torch.cat([old, logmel])}
            item_ids["audio"] = torch.cat([batch.item_ids["audio"], new_ids.to(batch.item_ids["audio"].device)])
            extra["waveform"] = torch.cat([wave, mixed_wave])
        return _shared.derive(batch, inputs, item_ids, **extra)


@AUGMENTATIONS.register("mix_negatives", MixNegativesOptions)
def mix_negatives(split, options: MixNegativesOptions):
    """Adds hard-negative items spliced from two batch items (left/first half of one, right/second of the other), new ids."""
    return MixNegatives(split, options)
