"""The on-disk cache: where foundation checkpoints and preprocessed built-in splits live.

Preprocessed splits are cached as tensors: each variant runs in its own process and would
otherwise regenerate (or decode) and re-tokenise the same data. The built-in dataset is a pure
function of its DataConfig; an on-disk (manifest) split is keyed by its config and its data's
fingerprint (xmbench.data.fingerprint: the manifest's bytes, every file's size and time), so a
changed or touched file means decoding again. Cached files are read with `weights_only=True`: a
cache folder may be shared, and unpickling arbitrary objects from it would run arbitrary code.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import torch

from xmbench.schema import changes

DATA_VERSION = 2  # bump when generation or preprocessing changes, so stale splits are not reused


def cache_root(override: str = "") -> Path:
    return Path(override or os.environ.get("XMBENCH_CACHE") or Path.home() / ".cache" / "xmbench")


def split_path(cfg, split: str, content: str | None = None) -> Path:
    """Keyed by what the config sets differently from the defaults (a new data option keeps the
    cache) and, for on-disk data, by the `content` fingerprint of its files."""
    key = {"version": DATA_VERSION, "data": changes(cfg, type(cfg)()), "split": split}
    if content is not None:
        key["content"] = content
    key = json.dumps(key, sort_keys=True)
    return cache_root() / "data" / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.pt"


def load_split(path: Path):
    """The cached EncodedSplit, or None when absent or unreadable (it is then rebuilt)."""
    from xmbench.data.preprocess import EncodedSplit

    if not path.exists():
        return None
    try:
        return EncodedSplit(**torch.load(path, weights_only=True))
    except Exception:  # noqa: BLE001 — a torn, foreign or older file is a cache miss, not an error
        return None


def store_split(path: Path, split) -> None:
    """Written as plain tensors, lists and dicts (what weights_only loading accepts), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    torch.save({f.name: getattr(split, f.name) for f in dataclasses.fields(split)}, tmp)
    os.replace(tmp, path)
