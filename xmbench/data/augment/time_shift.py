"""A random shift of each clip in time within its length, circular or zero-filled, on the raw waveform.

Each chosen clip moves by s samples, s uniform in [-max_seconds, max_seconds] · sample_rate
(rounded; positive is later): `circular` wraps what leaves one end around to the other, `zero`
fills the gap with silence and drops what leaves. The log-mel is recomputed with the
Preprocessor's mel transform. A plain gather, written here: torch.roll takes one shift per call,
torchaudio has no shift, and both would draw nothing from the run's generator.

On the built-in data the tone bursts play the objects left to right: a circular shift longer
than the silence at a clip's end brings its last burst to the front and changes the order the
captions name; a zero-filled one may push a burst out (first onsets are at 0.05 s, and a
three-object clip of 1.5 s ends about 0.12 s after its last burst). Keep max_seconds small
there (default 0.04 s).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from xmbench.registry import AUGMENTATIONS
from xmbench.schema import NON_NEGATIVE, Range


def shift_rows(wave, shifts, mode: str):
    """(rows, samples) with row i moved by shifts[i] samples (later when positive)."""
    from xmbench.lazy import torch

    n = wave.shape[-1]
    source = torch.arange(n)[None, :] - shifts[:, None]
    if mode == "circular":
        return wave.gather(1, source.remainder(n))
    inside = (source >= 0) & (source < n)
    return torch.where(inside, wave.gather(1, source.clamp(0, n - 1)), torch.zeros_like(wave))


@dataclass(frozen=True)
class TimeShiftOptions:
    """Attributes:
    max_seconds: largest shift either way, in seconds.
    mode: zero (fill with silence, drop what leaves) or circular (wrap around).
    p: probability that a clip is shifted.
    """

    max_seconds: Annotated[float, NON_NEGATIVE] = 0.04
    mode: Literal["zero", "circular"] = "zero"
    p: Annotated[float, Range(0, 1)] = 1.0


@AUGMENTATIONS.register("time_shift", TimeShiftOptions)
def time_shift(split, options: TimeShiftOptions):
    """Shifts each clip in time by up to max_seconds (circular or zero-fill) on the raw waveform; log-mel recomputed."""
    from xmbench.data.augment import _shared
    from xmbench.lazy import torch

    cfg = _shared.data_config(split, "time_shift")
    limit = int(round(options.max_seconds * cfg.sample_rate))

    def change(wave, generator):
        shifts = torch.randint(-limit, limit + 1, (len(wave),), generator=generator)
        return shift_rows(wave, shifts, options.mode)

    return _shared.WaveformAugmentation(split, "time_shift", options.p, change)
