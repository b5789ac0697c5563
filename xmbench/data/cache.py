"""The on-disk cache: where foundation checkpoints and preprocessed built-in splits live.

Preprocessed splits of the built-in dataset are a pure function of their DataConfig, so they
are cached as tensors: each variant runs in its own process and would otherwise regenerate
and re-tokenise the same data. On-disk (manifest) datasets are not cached: their files can
change under the same config.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

import torch

DATA_VERSION = 1  # bump when generation or preprocessing changes, so stale splits are not reused


def cache_root(override: str = "") -> Path:
    return Path(override or os.environ.get("XMBENCH_CACHE") or Path.home() / ".cache" / "xmbench")


def split_path(cfg, split: str) -> Path:
    key = json.dumps({"version": DATA_VERSION, "data": asdict(cfg), "split": split}, sort_keys=True)
    return cache_root() / "data" / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.pt"


def load_cached(path: Path):
    """The cached split, or None when absent or unreadable (it is then rebuilt)."""
    if not path.exists():
        return None
    try:
        return torch.load(path, weights_only=False)
    except Exception:  # noqa: BLE001 — a torn or foreign file is a cache miss, not an error
        return None


def store(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    torch.save(value, tmp)
    os.replace(tmp, path)
