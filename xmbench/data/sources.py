"""Registered datasets and the cached path from a DataConfig to model-ready splits."""
from __future__ import annotations

import functools
import json
from dataclasses import asdict

from xmbench.config import DataConfig, from_dict
from xmbench.data import cache, manifest, synthetic
from xmbench.data.preprocess import EncodedSplit, Preprocessor
from xmbench.data.split import RawSplit
from xmbench.registry import DATASETS

SPLITS = ("train", "val", "test")


@DATASETS.register("synthetic")
def synthetic_dataset(cfg: DataConfig, split: str) -> RawSplit:
    """Built-in tri-modal scenes (image, audio, 5 captions), generated from data.seed."""
    n = {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}[split]
    return synthetic.make_split(
        split, n, cfg.domain, cfg.seed, max_objects=cfg.max_objects, hard_negative_rate=cfg.hard_negative_rate,
        noise=cfg.noise, clutter=cfg.clutter, image_size=cfg.image_size, sample_rate=cfg.sample_rate,
        audio_seconds=cfg.audio_seconds)


@DATASETS.register("manifest")
def manifest_dataset(cfg: DataConfig, split: str) -> RawSplit:
    """On-disk set: a JSONL/CSV manifest of captions, image and audio paths (data.manifest)."""
    return manifest.read_split(cfg.manifest, split, image_size=cfg.image_size, sample_rate=cfg.sample_rate,
                               audio_seconds=cfg.audio_seconds)


def load_raw(cfg: DataConfig, split: str) -> RawSplit:
    return DATASETS.get(cfg.name)(cfg, split)


def load_split(cfg: DataConfig, split: str) -> EncodedSplit:
    """Model-ready tensors of one split; cached in-process and, for the built-in set, on disk."""
    return _load_split_cached(json.dumps(asdict(cfg), sort_keys=True), split)


@functools.lru_cache(maxsize=8)
def _load_split_cached(cfg_json: str, split: str) -> EncodedSplit:
    cfg = from_dict(DataConfig, json.loads(cfg_json))
    if cfg.name != "synthetic":
        return Preprocessor(cfg)(load_raw(cfg, split))
    path = cache.split_path(cfg, split)
    encoded = cache.load_cached(path)
    if encoded is None:
        encoded = Preprocessor(cfg)(load_raw(cfg, split))
        cache.store(path, encoded)
    return encoded
