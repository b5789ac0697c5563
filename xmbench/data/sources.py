"""From a DataConfig to model-ready splits: the registered dataset, preprocessing, and the cache."""
from __future__ import annotations

import functools
import json

from xmbench.config import DataConfig
from xmbench.data import cache, processors
from xmbench.data.fingerprint import data_fingerprint
from xmbench.data.preprocess import EncodedSplit, Preprocessor
from xmbench.data.split import RawSplit
from xmbench.registry import DATASETS
from xmbench.schema import load, to_tree

SPLITS = ("train", "val", "test")


def load_raw(cfg: DataConfig, split: str) -> RawSplit:
    """The split decoded as its processors read it (their image size and sampling rate)."""
    return DATASETS.get(cfg.name)(processors.decoding_config(cfg), split)


def load_split(cfg: DataConfig, split: str) -> EncodedSplit:
    """Model-ready tensors of one split; cached in-process and on disk (xmbench.data.cache)."""
    return _load_split_cached(json.dumps(to_tree(cfg), sort_keys=True), split)


@functools.lru_cache(maxsize=8)
def _load_split_cached(cfg_json: str, split: str) -> EncodedSplit:
    cfg = load(DataConfig, json.loads(cfg_json))
    content = data_fingerprint(cfg)
    processed_by = processors.fingerprint(cfg)  # the towers' processors' own files shape the tensors too
    if processed_by is not None:
        content = f"{content}:{processed_by}"
    if cfg.name not in ("synthetic", "manifest"):  # a dataset xmbench cannot fingerprint is prepared every time
        encoded = Preprocessor(cfg)(load_raw(cfg, split))
    else:  # decoded and preprocessed once, then read from the cache
        path = cache.split_path(cfg, split, content)
        encoded = cache.load_split(path)
        if encoded is None:
            encoded = Preprocessor(cfg)(load_raw(cfg, split))
            cache.store_split(path, encoded)
    encoded.config = cfg  # where it came from: augmentations that work on raw data reload it (load_raw)
    return encoded
