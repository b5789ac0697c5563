"""Registered datasets: each turns a DataConfig and a split name into a RawSplit."""
from __future__ import annotations

from typing import TYPE_CHECKING

from xmbench.registry import DATASETS

if TYPE_CHECKING:
    from xmbench.config import DataConfig
    from xmbench.data.split import RawSplit


@DATASETS.register("synthetic")
def synthetic_dataset(cfg: DataConfig, split: str, options=None) -> RawSplit:
    """Built-in tri-modal scenes (image, audio, 5 captions), generated from data.seed; data.missing
    drops modalities from training items."""
    from xmbench.data import synthetic

    n = {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}[split]
    raw = synthetic.make_split(
        split, n, cfg.domain, cfg.seed, max_objects=cfg.max_objects, hard_negative_rate=cfg.hard_negative_rate,
        noise=cfg.noise, clutter=cfg.clutter, image_size=cfg.image_size, sample_rate=cfg.sample_rate,
        audio_seconds=cfg.audio_seconds)
    if split == "train" and any(cfg.missing.values()):  # evaluation stays on complete items: every direction, same queries
        from xmbench.data.missing import drop_modalities

        raw = drop_modalities(raw, cfg.missing, cfg.seed)
    return raw


@DATASETS.register("manifest")
def manifest_dataset(cfg: DataConfig, split: str, options=None) -> RawSplit:
    """On-disk set: a JSONL/CSV manifest of captions, image and audio paths (data.manifest)."""
    from xmbench.data import manifest

    return manifest.read_split(cfg.manifest, split, image_size=cfg.image_size, sample_rate=cfg.sample_rate,
                               audio_seconds=cfg.audio_seconds)
