"""Audio augmentations: gain, noise and time shift on the raw waveform (log-mel recomputed), SpecAugment masks."""
import math

import pytest
import torch

from tests.data.augment._helpers import batch_of, build, generator, same_batches, tiny_split
from xmbench.data.augment import _shared
from xmbench.data.augment.spec_augment import band_masks
from xmbench.data.augment.time_shift import shift_rows
from xmbench.errors import ConfigError

ITEMS = list(range(8))


@pytest.fixture(scope="module")
def split():
    return tiny_split()


@pytest.fixture(scope="module")
def raw(split):
    return _shared.raw_audio(split, "test")


def carried(batch):
    return _shared.state(batch)["waveform"]


def test_the_raw_route_reproduces_the_split_log_mel_exactly(split, raw):
    """What every waveform augmentation relies on: raw clips through the Preprocessor give the stored inputs."""
    assert raw.shape == (12, 8000) and raw.dtype == torch.float32
    assert torch.equal(_shared.log_mel(raw, split.config), split.audio["input_values"])
    assert _shared.raw_audio(split, "test") is raw  # loaded once per process


def test_gain_is_exact_on_the_waveform(split, raw):
    batch = batch_of(split, ITEMS)
    out = build("gain", split, min_db=20 * math.log10(2), max_db=20 * math.log10(2))(batch, generator())
    assert torch.allclose(carried(out), raw[ITEMS] * 2, rtol=1e-6, atol=0)
    assert torch.equal(out.inputs["audio"]["input_values"], _shared.log_mel(carried(out), split.config))
    assert not torch.allclose(out.inputs["audio"]["input_values"], batch.inputs["audio"]["input_values"])
    assert same_batches(out, out) and torch.equal(out.inputs["text"]["input_ids"], batch.inputs["text"]["input_ids"])


def test_gain_draws_one_gain_per_clip_in_range(split, raw):
    batch = batch_of(split, ITEMS)
    aug = build("gain", split, min_db=-2.0, max_db=2.0)
    out = aug(batch, generator(1))
    ratio = (carried(out).abs().sum(1) / raw[ITEMS].abs().sum(1)).double()
    db = 20 * torch.log10(ratio)
    assert ((db >= -2 - 1e-4) & (db <= 2 + 1e-4)).all() and db.std() > 0.3
    assert same_batches(aug(batch, generator(1)), out)
    assert not same_batches(aug(batch, generator(2)), out)


def test_gain_wider_than_half_the_loudness_gap_of_sizes_is_refused_on_built_in_data(split):
    with pytest.raises(ConfigError, match="loudness tells an object's size"):
        build("gain", split, min_db=-3.0, max_db=3.0)
    with pytest.raises(ConfigError, match="min_db 1 is above max_db -1"):
        build("gain", split, min_db=1.0, max_db=-1.0)


def test_noise_is_added_at_the_drawn_snr(split, raw):
    batch = batch_of(split, ITEMS)
    out = build("noise", split, min_snr_db=20.0, max_snr_db=20.0)(batch, generator(3))
    clean = raw[ITEMS].double()
    noise = carried(out).double() - clean
    snr = 10 * torch.log10(clean.pow(2).mean(1) / noise.pow(2).mean(1))
    assert torch.allclose(snr, torch.full_like(snr, 20.0), atol=0.15)  # 8,000 samples: the estimate's spread is 0.07 dB
    assert noise.mean(1).abs().max() < 3 * noise.std(1).max() / math.sqrt(8000) + 1e-9
    assert torch.equal(out.inputs["audio"]["input_values"], _shared.log_mel(carried(out), split.config))


def test_shift_rows_by_hand():
    wave = torch.tensor([[1.0, 2, 3, 4], [1, 2, 3, 4]])
    shifts = torch.tensor([1, -1])
    assert shift_rows(wave, shifts, "zero").tolist() == [[0, 1, 2, 3], [2, 3, 4, 0]]
    assert shift_rows(wave, shifts, "circular").tolist() == [[4, 1, 2, 3], [2, 3, 4, 1]]


@pytest.mark.parametrize("mode", ["zero", "circular"])
def test_time_shift_moves_each_clip_within_the_limit(split, raw, mode):
    batch = batch_of(split, ITEMS)
    out = build("time_shift", split, max_seconds=0.01, mode=mode)(batch, generator(5))
    limit = 160  # 0.01 s at 16 kHz
    found = []
    for row, item in enumerate(ITEMS):
        matches = [s for s in range(-limit, limit + 1)
                   if torch.equal(shift_rows(raw[item:item + 1], torch.tensor([s]), mode)[0], carried(out)[row])]
        assert len(matches) == 1
        found.append(matches[0])
    assert len(set(found)) > 1
    assert torch.equal(out.inputs["audio"]["input_values"], _shared.log_mel(carried(out), split.config))


def test_waveform_augmentations_compose_in_order(split, raw):
    batch = batch_of(split, ITEMS)
    doubled = build("gain", split, min_db=20 * math.log10(2), max_db=20 * math.log10(2))(batch, generator())
    noisy = build("noise", split, min_snr_db=20.0, max_snr_db=20.0)(doubled, generator(3))
    alone = build("noise", split, min_snr_db=20.0, max_snr_db=20.0)(batch, generator(3))
    # the same noise draws, scaled by the doubled clip's power: the noise sees the gain before it
    assert torch.allclose(carried(noisy), 2 * carried(alone), rtol=1e-5, atol=1e-6)
    masked = build("spec_augment", split)(batch, generator())
    with pytest.raises(ConfigError, match="list waveform augmentations first"):
        build("gain", split, min_db=0.0, max_db=1.0)(masked, generator())


@pytest.mark.parametrize("name, options", [("gain", {}), ("noise", {}), ("time_shift", {}), ("spec_augment", {})])
def test_p_zero_changes_nothing_and_draws_as_much(split, name, options):
    batch = batch_of(split, ITEMS)
    g0, g1 = generator(7), generator(7)
    assert build(name, split, p=0.0, **options)(batch, g0) is batch
    build(name, split, p=1.0, **options)(batch, g1)
    assert torch.equal(g0.get_state(), g1.get_state())


def test_band_masks_by_hand():
    # width = floor(u0 · (width + 1)), start = floor(u1 · (size − width + 1))
    g = generator(0)
    draws = torch.rand(2, 1, 2, generator=generator(0), dtype=torch.float64)
    masks = band_masks(2, 10, 1, 4, g)
    for row in range(2):
        width = int(draws[row, 0, 0] * 5)
        start = int(draws[row, 0, 1] * (10 - width + 1))
        assert masks[row].tolist() == [start <= i < start + width for i in range(10)]
    assert not band_masks(3, 10, 0, 4, generator()).any()


def test_spec_augment_masks_bands_of_bounded_width(split):
    batch = batch_of(split, ITEMS)
    out = build("spec_augment", split, time_masks=1, time_width=5, freq_masks=1, freq_width=3, value=-7.0)(batch, generator(9))
    logmel, before = out.inputs["audio"]["input_values"], batch.inputs["audio"]["input_values"]
    masked = logmel == -7.0
    assert torch.equal(torch.where(masked, before, logmel), before)  # everything else unchanged
    frames = masked.all(2).sum(1)  # whole time frames masked
    bins = masked.all(1).sum(1)  # whole mel bins masked
    assert (frames <= 5).all() and (bins <= 3).all() and (frames + bins).sum() > 0
    assert _shared.state(out)["mel_edited"]
    assert same_batches(build("spec_augment", split, time_masks=1, time_width=5, freq_masks=1, freq_width=3,
                              value=-7.0)(batch, generator(9)), out)
