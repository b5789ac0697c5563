"""SpecAugment's masks (Park et al. 2019) on the batch's log-mel: time and frequency bands set to a value.

Each chosen clip gets `time_masks` masks of t consecutive frames, t uniform in [0, time_width],
at a uniform start, and `freq_masks` masks of f consecutive mel bins, f uniform in [0, freq_width],
likewise (as torchaudio's TimeMasking / FrequencyMasking with iid_masks); masked cells take
`value` (0 is the mean of the standardised log-mel the towers read). No time warping. Written
here, vectorised over the batch, because torchaudio's masking draws from torch's global RNG, not
the run's generator; draws: the choice per clip, then two values per mask per clip, whatever the
choice. It works on the log-mel, so waveform augmentations (gain, noise, time_shift, pitch_shift)
must come before it in train.augment: one after it refuses, since recomputing the log-mel would
drop the masks.

On the built-in data a frequency mask can hide a colour's fundamental (its harmonics remain,
except for circles, pure tones), and a time mask part of a burst (bursts last 0.35 s or more,
a mask at most time_width × 10 ms).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from xmbench.registry import AUGMENTATIONS
from xmbench.schema import NON_NEGATIVE, Range


def band_masks(rows: int, size: int, count: int, width: int, generator):
    """(rows, size) bool: the union of `count` bands of width uniform in [0, width] at uniform starts, per row."""
    from xmbench.lazy import torch

    draws = torch.rand(rows, count, 2, generator=generator, dtype=torch.float64)
    widths = (draws[..., 0] * (min(width, size) + 1)).floor().clamp(max=min(width, size)).long()
    starts = (draws[..., 1] * (size - widths + 1)).floor().long().clamp(max=size - widths)
    position = torch.arange(size)[None, None, :]
    inside = (position >= starts[..., None]) & (position < (starts + widths)[..., None])
    return inside.any(1) if count else torch.zeros(rows, size, dtype=torch.bool)


@dataclass(frozen=True)
class SpecAugmentOptions:
    """Attributes:
    time_masks: masks along time per clip.
    time_width: widest time mask, in frames (10 ms each).
    freq_masks: masks along frequency per clip.
    freq_width: widest frequency mask, in mel bins.
    value: what masked cells become (0: the mean of the standardised log-mel).
    p: probability that a clip is masked.
    """

    time_masks: Annotated[int, NON_NEGATIVE] = 2
    time_width: Annotated[int, NON_NEGATIVE] = 10
    freq_masks: Annotated[int, NON_NEGATIVE] = 2
    freq_width: Annotated[int, NON_NEGATIVE] = 8
    value: float = 0.0
    p: Annotated[float, Range(0, 1)] = 1.0


class SpecAugment:
    def __init__(self, split, options: SpecAugmentOptions):
        from xmbench.data.augment import _shared

        _shared.require(split, "audio", "spec_augment")
        self.options = options

    def __call__(self, batch, generator):
        from xmbench.data.augment import _shared
        from xmbench.lazy import torch

        o = self.options
        logmel = batch.inputs["audio"]["input_values"]  # (rows, frames, n_mels)
        rows, frames, mels = logmel.shape
        chosen = _shared.chosen(rows, o.p, generator)
        time = band_masks(rows, frames, o.time_masks, o.time_width, generator)
        freq = band_masks(rows, mels, o.freq_masks, o.freq_width, generator)
        mask = (time[:, :, None] | freq[:, None, :]) & chosen[:, None, None]
        if not bool(mask.any()):
            return batch
        masked = torch.where(mask.to(logmel.device), torch.full_like(logmel, o.value), logmel)
        return _shared.derive(batch, {"audio": {**batch.inputs["audio"], "input_values": masked}}, mel_edited=True)


@AUGMENTATIONS.register("spec_augment", SpecAugmentOptions)
def spec_augment(split, options: SpecAugmentOptions):
    """SpecAugment time and frequency masks on the log-mel (seeded, vectorised); list it after waveform augmentations."""
    return SpecAugment(split, options)
