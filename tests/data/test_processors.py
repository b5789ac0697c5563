"""Processors decide how the data is decoded and preprocessed: resolution, sampling rate, and the split cache key."""
import pytest
import torch

from xmbench.config import DataConfig
from xmbench.data import cache, processors, sources
from xmbench.data.processors import check_sample_rate, decoding_config, fingerprint, resolution
from xmbench.errors import ConfigError

SMALL = dict(n_train=4, n_val=0, n_test=6, audio_seconds=0.25, n_mels=16)


def image_processor(folder, side: int = 32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)):
    import transformers

    transformers.ViTImageProcessor(size={"height": side, "width": side}, image_mean=list(mean),
                                   image_std=list(std)).save_pretrained(folder)
    return str(folder)


def test_the_resolution_is_the_crop_else_the_resize():
    assert resolution({"crop_size": {"height": 24, "width": 24}, "size": {"shortest_edge": 32}}) == 24
    assert resolution({"size": {"height": 40, "width": 40}}) == 40
    assert resolution({"size": {"shortest_edge": 36}}) == 36
    assert resolution({"size": 28}) == 28
    assert resolution({}) is None


def test_decoding_follows_the_processors(tmp_path):
    import transformers

    folder = image_processor(tmp_path / "image", side=48)
    assert processors.processor_config(folder)["size"] == {"height": 48, "width": 48}
    assert processors.processor_config(tmp_path) == {}
    cfg = DataConfig(image_size=64, processors={"image": folder})
    assert decoding_config(cfg).image_size == 48
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=22050).save_pretrained(tmp_path / "audio")
    assert decoding_config(DataConfig(processors={"audio": str(tmp_path / "audio")})).sample_rate == 22050
    assert decoding_config(DataConfig()) == DataConfig()  # the built-in preprocessing decodes as configured


def test_a_sampling_rate_the_data_cannot_meet_is_a_config_error():
    check_sample_rate(DataConfig(), 16000, "here")  # the default rate meets the processor's
    with pytest.raises(ConfigError, match="data.sample_rate: 22050 Hz, but the audio tower's processor"):
        check_sample_rate(DataConfig(sample_rate=22050), 16000, "here")
    with pytest.raises(ConfigError, match=r"samples at 8000 Hz.*Nyquist frequency 4000 Hz"):
        check_sample_rate(DataConfig(), 8000, "here")
    check_sample_rate(DataConfig(name="manifest"), 8000, "here")  # the user's files may be band-limited


def test_two_image_processors_never_share_cached_tensors(tmp_path):
    plain = image_processor(tmp_path / "plain")
    imagenet = image_processor(tmp_path / "imagenet", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    larger = image_processor(tmp_path / "larger", side=48)
    configs = {name: DataConfig(**SMALL, processors={"image": folder})
               for name, folder in (("plain", plain), ("imagenet", imagenet), ("larger", larger))}
    keys = {name: fingerprint(cfg) for name, cfg in configs.items()}
    assert len(set(keys.values())) == 3 and fingerprint(DataConfig()) is None
    stored = set((cache.cache_root() / "data").glob("*.pt"))
    pixels = {name: sources.load_split(cfg, "test").image["pixel_values"] for name, cfg in configs.items()}
    assert len(set((cache.cache_root() / "data").glob("*.pt")) - stored) == 3  # one cached split each
    assert pixels["plain"].shape == pixels["imagenet"].shape == (6, 3, 32, 32)
    assert pixels["larger"].shape == (6, 3, 48, 48)
    assert not torch.allclose(pixels["plain"], pixels["imagenet"])
    # the same images, normalised by each processor's own statistics
    mean, std = torch.tensor([0.485, 0.456, 0.406])[:, None, None], torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    torch.testing.assert_close(pixels["imagenet"], ((pixels["plain"] * 0.5 + 0.5) - mean) / std, rtol=1e-4, atol=1e-4)


def test_rewriting_a_processors_files_changes_the_key(tmp_path):
    folder = image_processor(tmp_path / "image")
    cfg = DataConfig(**SMALL, processors={"image": folder})
    before = fingerprint(cfg)
    first = sources.load_split(cfg, "test").image["pixel_values"]
    image_processor(tmp_path / "image", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))  # same folder, new statistics
    assert fingerprint(cfg) != before
    sources._load_split_cached.cache_clear()  # a new process: only the on-disk cache remains
    second = sources.load_split(cfg, "test").image["pixel_values"]
    torch.testing.assert_close(second, first * 0.5 + 0.5, rtol=1e-5, atol=1e-5)
