"""A random pitch shift of each clip in semitones, duration kept, batched in the STFT domain (fast).

Each chosen clip is shifted by s semitones, s uniform in [-max_semitones, max_semitones], on its
raw waveform (loaded once at build), with xmbench.data.augment._pitch.pitch_shift: Laroche &
Dolson's peak-region shifting with phase rotation, every clip with its own shift in one batched
STFT / inverse STFT (its docstring gives the method and its artefacts). The log-mel is recomputed
with the Preprocessor's mel transform. torchaudio.functional.pitch_shift is not used: it takes
one shift per call and 12-15 s for eight one-second clips on this machine, against milliseconds
(benchmarks/pitch_shift.py measures both and checks the pitch on a tone).

On the built-in data pitch is a label: colours play at 220-587 Hz, 3 or 4 semitones apart
(each ±1% at random). A shift of half the smallest gap (1.5 semitones) or more could make one
colour sound like its neighbour, so it is refused there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

from xmbench.errors import ConfigError
from xmbench.registry import AUGMENTATIONS
from xmbench.schema import NON_NEGATIVE, Range


def colour_gap_semitones() -> float:
    """The smallest pitch gap between the built-in data's colours, in semitones."""
    from xmbench.data.synthetic import PITCH_HZ

    values = sorted(PITCH_HZ.values())
    return min(12 * math.log2(b / a) for a, b in zip(values, values[1:]))


@dataclass(frozen=True)
class PitchShiftOptions:
    """Attributes:
    max_semitones: largest shift either way, in semitones.
    p: probability that a clip is shifted.
    n_fft: STFT window of the shift (samples); longer resolves low pitches better and smears onsets more.
    """

    max_semitones: Annotated[float, NON_NEGATIVE] = 0.5
    p: Annotated[float, Range(0, 1)] = 1.0
    n_fft: Annotated[int, Range(16)] = 1024


@AUGMENTATIONS.register("pitch_shift", PitchShiftOptions)
def pitch_shift(split, options: PitchShiftOptions):
    """Pitch shift by up to max_semitones per clip, duration kept (batched STFT-domain shift); log-mel recomputed."""
    from xmbench.data.augment import _pitch, _shared

    if _shared.is_builtin(split) and options.max_semitones >= colour_gap_semitones() / 2:
        raise ConfigError(f"train.augment: pitch_shift: on the built-in data pitch tells an object's colour "
                          f"({colour_gap_semitones():.1f} semitones apart at least); max_semitones = "
                          f"{options.max_semitones:g} is refused there (keep it under {colour_gap_semitones() / 2:.2f})")

    def change(wave, generator):
        steps = _shared.uniform(len(wave), -options.max_semitones, options.max_semitones, generator)
        return _pitch.pitch_shift(wave, steps, n_fft=options.n_fft)

    return _shared.WaveformAugmentation(split, "pitch_shift", options.p, change)
