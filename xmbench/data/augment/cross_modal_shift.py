"""Cross-modal augmentation: one horizontal translation applied consistently to an item's image and audio.

Definition. For each chosen item a fraction f is drawn uniformly in [-max_fraction, max_fraction];
with W the image width and N the clip's samples, the image moves d = round(f · W) pixels to the
right (the columns that enter repeat the edge column: the background continues) and the audio
moves round(d / W · N) samples later (silence enters, what leaves is dropped), so both move by
the same share d / W of their extent. On the built-in data the image's left-to-right axis is the
audio's time axis (objects are drawn left to right and played in that order), so this is the
same geometric change of the scene in both: the item stays a positive of itself in every pair,
its captions stay true (the order is unchanged), and image and audio stay in register. Text is
untouched. One draw for the choice and one for f per item, from the run's generator.

Why this, and not something else: replacing an item's image by another item's that fits its
caption is impossible in general, and a left-right half swap of one item reverses its order,
which its captions name. Limits: the built-in data leaves little room at the ends (a large
outer object of a three-object scene may touch the border already; the first tone burst starts
0.05 s, 3% of 1.5 s, into the clip), so a translation can cut an object at the border or push
part of a burst out: keep max_fraction small (default 0.03). An image-only or audio-only batch
gets the one translation it can; the image and audio rows of a batch must be the same items.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from xmbench.errors import ConfigError
from xmbench.registry import AUGMENTATIONS
from xmbench.schema import Range


def shift_columns(pixels, shifts):
    """(rows, C, H, W) images moved shifts[i] pixels right (left when negative), edge columns repeated."""
    from xmbench.lazy import torch

    width = pixels.shape[-1]
    source = (torch.arange(width)[None, :] - shifts[:, None]).clamp(0, width - 1).to(pixels.device)
    return pixels.gather(3, source[:, None, None, :].expand(pixels.shape))


@dataclass(frozen=True)
class CrossModalShiftOptions:
    """Attributes:
    max_fraction: largest translation either way, as a share of the image width and of the clip's duration.
    p: probability that an item is translated.
    """

    max_fraction: Annotated[float, Range(0, 0.5)] = 0.03
    p: Annotated[float, Range(0, 1)] = 1.0


class CrossModalShift:
    def __init__(self, split, options: CrossModalShiftOptions):
        from xmbench.data.augment import _shared

        if getattr(split, "image", None) is None and getattr(split, "audio", None) is None:
            raise ConfigError("train.augment: cross_modal_shift needs images or audio in the training split")
        self.options = options
        self.cfg = _shared.data_config(split, "cross_modal_shift")
        self.raw = _shared.raw_audio(split, "cross_modal_shift") if getattr(split, "audio", None) is not None else None

    def __call__(self, batch, generator):
        from xmbench.data.augment import _shared
        from xmbench.data.augment.time_shift import shift_rows
        from xmbench.lazy import torch

        has_image, has_audio = "image" in batch.inputs, "audio" in batch.inputs and self.raw is not None
        if not (has_image or has_audio):
            return batch
        if has_image and has_audio and not torch.equal(batch.item_ids["image"].cpu(), batch.item_ids["audio"].cpu()):
            raise ValueError("cross_modal_shift: the image and audio rows of the batch are not the same items")
        rows = len(batch.item_ids["image" if has_image else "audio"])
        chosen = _shared.chosen(rows, self.options.p, generator)
        fraction = _shared.uniform(rows, -self.options.max_fraction, self.options.max_fraction, generator)
        if not bool(chosen.any()):
            return batch
        width = batch.inputs["image"]["pixel_values"].shape[-1] if has_image else self.cfg.image_size
        pixels_moved = torch.where(chosen, torch.round(fraction * width), torch.zeros_like(fraction)).long()
        out = batch
        if has_audio:
            wave = _shared.waveforms(batch, self.raw, "cross_modal_shift")
            samples = torch.round(pixels_moved.to(torch.float64) / width * wave.shape[-1]).long()
            out = _shared.with_waveforms(batch, shift_rows(wave, samples, "zero"), self.cfg, chosen)
        if has_image:
            moved = shift_columns(batch.inputs["image"]["pixel_values"], pixels_moved)
            out = _shared.derive(out, {"image": {**batch.inputs["image"], "pixel_values": moved}})
        return out


@AUGMENTATIONS.register("cross_modal_shift", CrossModalShiftOptions)
def cross_modal_shift(split, options: CrossModalShiftOptions):
    """Translates an item's image right by d/W and its audio later by d/W of the clip, together (a positive of itself)."""
    return CrossModalShift(split, options)
