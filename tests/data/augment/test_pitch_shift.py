"""The batched STFT-domain pitch shift: exact pitch on tones, duration kept, identity at 0; its augmentation.

Its speed against torchaudio is measured by benchmarks/pitch_shift.py, not asserted here."""
import math

import pytest
import torch

from tests.data.augment._helpers import batch_of, build, generator, same_batches, tiny_split
from xmbench.data.augment import _shared
from xmbench.data.augment._pitch import dominant_frequency, pitch_shift
from xmbench.errors import ConfigError

RATE = 16000


def tones(*frequencies, seconds=1.0):
    t = torch.arange(int(RATE * seconds)) / RATE
    return torch.stack([torch.sin(2 * math.pi * f * t) for f in frequencies]).float()


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def test_440_hz_up_two_semitones_is_493_9_hz():
    shifted = pitch_shift(tones(440.0), 2.0)
    assert shifted.shape == (1, RATE)  # duration kept
    assert dominant_frequency(tones(440.0), RATE).item() == pytest.approx(440.0, abs=0.05)
    assert dominant_frequency(shifted, RATE).item() == pytest.approx(440 * 2 ** (2 / 12), abs=0.5)  # 493.88


def test_each_clip_has_its_own_shift():
    frequencies = torch.tensor([220.0, 277.2, 329.6, 392.0, 493.9, 587.3, 1000.0, 250.0])
    steps = torch.tensor([-3.0, -2.0, -1.0, -0.5, 0.5, 1.0, 2.0, 3.0])
    shifted = pitch_shift(tones(*frequencies.tolist()), steps)
    expected = frequencies.double() * 2 ** (steps.double() / 12)
    assert torch.allclose(dominant_frequency(shifted, RATE), expected, atol=0.5)
    rms = shifted[:, 2000:-2000].pow(2).mean(1).sqrt()  # the partial's energy is kept (within 10%)
    assert ((rms > 0.9 * math.sqrt(0.5)) & (rms < 1.05 * math.sqrt(0.5))).all()


def test_partials_of_a_harmonic_tone_move_together():
    t = torch.arange(RATE) / RATE
    tone = sum(a * torch.sin((h + 1) * 2 * math.pi * 300 * t) for h, a in enumerate((1.0, 0.5, 0.33)))
    spectrum = torch.fft.rfft(pitch_shift(tone[None].float(), 2.0)[0]).abs()  # 1 Hz bins
    peaks = sorted(spectrum.topk(12).indices.tolist())
    for h in (1, 2, 3):
        assert any(abs(p - 300 * h * 2 ** (2 / 12)) <= 1 for p in peaks)


def test_zero_semitones_gives_the_clip_back_and_batch_shapes_are_kept():
    noise = torch.randn(2, 3, 4000, generator=generator(0))
    assert torch.allclose(pitch_shift(noise, 0.0), noise, atol=1e-5)
    assert pitch_shift(noise, 1.0).shape == noise.shape


def test_the_augmentation_shifts_the_raw_waveform_per_clip():
    split = tiny_split()
    raw = _shared.raw_audio(split, "test")
    batch = batch_of(split, range(8))
    aug = build("pitch_shift", split, max_semitones=1.0)
    out = aug(batch, generator(2))
    wave = _shared.state(out)["waveform"]
    g = generator(2)
    _shared.chosen(8, 1.0, g)
    steps = _shared.uniform(8, -1.0, 1.0, g)  # the draws in the augmentation's order: choice, then shifts
    assert torch.equal(wave, pitch_shift(raw[:8], steps))
    assert torch.equal(out.inputs["audio"]["input_values"], _shared.log_mel(wave, split.config))
    assert same_batches(aug(batch, generator(2)), out)
    identity = build("pitch_shift", split, max_semitones=0.0)(batch, generator(2))
    assert torch.allclose(identity.inputs["audio"]["input_values"], batch.inputs["audio"]["input_values"], atol=1e-3)


def test_shifts_that_could_change_a_colour_are_refused_on_built_in_data():
    with pytest.raises(ConfigError, match=r"pitch tells an object's colour \(3.0 semitones"):
        build("pitch_shift", tiny_split(), max_semitones=1.5)
    build("pitch_shift", tiny_split(), max_semitones=1.4)
