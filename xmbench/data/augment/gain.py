"""Random gain of the training batch's waveforms, uniform in decibels, exact (the log-mel is recomputed).

Each chosen clip is multiplied by 10^(g/20), g uniform in [min_db, max_db], on its raw waveform
(xmbench.data.augment._shared: loaded once at build), and its log-mel is recomputed with the
Preprocessor's mel transform: exact, where adding 2·g/20·ln 10 to the log-mel would not be (its
floor of 1e-6 does not scale). No clipping: the waveform may leave [-1, 1], which the log-mel
does not mind. One draw per clip for the choice and one for the gain, from the run's generator.
torchaudio.transforms.Vol would do the multiplication, but not draw from the run's generator.

On the built-in data loudness is a label: a small object plays at 0.25, a large one at 0.7
(8.9 dB apart). A range wider than half that gap could make a small object of one clip louder
than a large one of another, so it is refused there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

from xmbench.errors import ConfigError
from xmbench.registry import AUGMENTATIONS
from xmbench.schema import Range


def size_gap_db() -> float:
    """The loudness gap between the built-in data's sizes, in dB."""
    from xmbench.data.synthetic import LOUDNESS

    values = sorted(LOUDNESS.values())
    return min(20 * math.log10(b / a) for a, b in zip(values, values[1:]))


@dataclass(frozen=True)
class GainOptions:
    """Attributes:
    min_db: lowest gain in dB.
    max_db: highest gain in dB.
    p: probability that a clip is changed.
    """

    min_db: float = -2.0
    max_db: float = 2.0
    p: Annotated[float, Range(0, 1)] = 1.0


@AUGMENTATIONS.register("gain", GainOptions)
def gain(split, options: GainOptions):
    """Random gain in dB on the raw waveform (uniform in [min_db, max_db]), log-mel recomputed."""
    from xmbench.data.augment import _shared
    from xmbench.lazy import torch

    if options.min_db > options.max_db:
        raise ConfigError(f"train.augment: gain: min_db {options.min_db:g} is above max_db {options.max_db:g}")
    if _shared.is_builtin(split) and options.max_db - options.min_db >= size_gap_db() / 2:
        raise ConfigError(f"train.augment: gain: on the built-in data loudness tells an object's size "
                          f"({size_gap_db():.1f} dB apart); a range of {options.max_db - options.min_db:g} dB "
                          f"is refused there (keep max_db - min_db under {size_gap_db() / 2:.2f})")

    def change(wave, generator):
        db = _shared.uniform(len(wave), options.min_db, options.max_db, generator)
        return wave * torch.pow(10.0, db / 20).to(wave.dtype)[:, None]

    return _shared.WaveformAugmentation(split, "gain", options.p, change)
