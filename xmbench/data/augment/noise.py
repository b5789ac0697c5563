"""Additive Gaussian noise at a signal-to-noise ratio drawn in decibels, measured on each clip's power.

For each chosen clip x (raw waveform, loaded once at build) with power P = mean(x²), an SNR s is
drawn uniformly in [min_snr_db, max_snr_db] and white Gaussian noise of variance P / 10^(s/10)
is added, so that 10·log10(P / mean(n²)) is s in expectation (within about 0.1 dB on a
one-second clip at 16 kHz). A silent clip gets none. The log-mel is recomputed with the
Preprocessor's mel transform. Draws from the run's generator: the choice and the SNR per clip,
then one normal value per sample of every clip. torchaudio.functional.add_noise does the same
scaling for a given noise tensor; it is not used because drawing the noise is the whole work here.

The clip's power includes its own background noise (the built-in target domain's is loud), so
the SNR is with respect to the clip as recorded, not to its clean tones.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from xmbench.errors import ConfigError
from xmbench.registry import AUGMENTATIONS
from xmbench.schema import Range


@dataclass(frozen=True)
class NoiseOptions:
    """Attributes:
    min_snr_db: lowest signal-to-noise ratio in dB (the most noise).
    max_snr_db: highest signal-to-noise ratio in dB.
    p: probability that a clip gets noise.
    """

    min_snr_db: float = 10.0
    max_snr_db: float = 30.0
    p: Annotated[float, Range(0, 1)] = 1.0


@AUGMENTATIONS.register("noise", NoiseOptions)
def noise(split, options: NoiseOptions):
    """Gaussian noise at an SNR in dB drawn per clip (uniform), measured on the clip's power; log-mel recomputed."""
    from xmbench.data.augment import _shared
    from xmbench.lazy import torch

    if options.min_snr_db > options.max_snr_db:
        raise ConfigError(f"train.augment: noise: min_snr_db {options.min_snr_db:g} is above max_snr_db {options.max_snr_db:g}")

    def change(wave, generator):
        snr = _shared.uniform(len(wave), options.min_snr_db, options.max_snr_db, generator)
        power = wave.to(torch.float64).pow(2).mean(1)
        std = torch.sqrt(power / torch.pow(10.0, snr / 10))
        return wave + torch.randn(wave.shape, generator=generator, dtype=wave.dtype) * std.to(wave.dtype)[:, None]

    return _shared.WaveformAugmentation(split, "noise", options.p, change)
