"""Features of a frozen tower, computed once per input and kept on disk (`train.feature_cache`).

A tower none of whose parameters trains maps the same input to the same features every time,
yet the engine runs it at every step of every epoch, and every variant and seed of a suite
runs it again. With the cache on, such a tower looks each input row up by its content and runs
only on the rows it has not seen; what it computed is written to the cache folder when training
ends, so the next run of the same frozen tower starts warm.

Keyed by everything that shapes a feature: the tower's weights (a digest of its state), the
device type, the autocast state at the call, and the row's own content (the attention mask's
padding trimmed, so the same caption padded in two batches is one entry). Two semantics to know:
- a cached tower runs as in evaluation (dropout off): a frozen feature extractor is a function;
- the cache stands aside for good once any of the tower's parameters trains (progressive
  unfreezing), since the weights its entries were keyed by then change.
Augmented rows differ from every stored row: they miss, run the tower, and are kept only while
the store is under its size cap, so an augmented modality costs what it did without the cache.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
import xxhash
from torch import nn

CACHE_VERSION = 2  # bump when what a key covers, or how it is hashed, changes


def weights_digest(module: nn.Module) -> str:
    """A digest of every tensor of the module's state: names, dtypes, shapes and values."""
    digest = hashlib.blake2b(f"v{CACHE_VERSION}".encode(), digest_size=16)
    for name, tensor in module.state_dict().items():
        if not isinstance(tensor, torch.Tensor):
            continue
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def row_keys(inputs: dict[str, torch.Tensor], context: str) -> list[str]:
    """One key per row: the row's tensors (real tokens only where there is an attention mask).

    Hashed from numpy views of each row (no copies) with xxh3-128: the lookup must stay far cheaper
    than the smallest tower it stands in for, and blake2b, at ~0.5 GB/s here, took ~100 µs of an
    image row's ~1 ms. xxh3 is not cryptographic; a 128-bit key is ample against accidental
    collisions among a cache's rows, and no one is adversarial here.
    """
    arrays = {name: _numpy(value) for name, value in sorted(inputs.items())}
    mask = inputs.get("attention_mask")
    lengths = _prefix_lengths(mask) if mask is not None else None
    real = mask.detach().cpu().bool().numpy() if mask is not None and lengths is None else None  # not right-padded
    prefix = f"v{CACHE_VERSION}|{context}".encode()  # the same for every row: made once
    keys = []
    for i in range(len(next(iter(arrays.values())))):
        digest = xxhash.xxh3_128(prefix)
        for name, array in arrays.items():
            row = array[i]
            if mask is not None and row.shape[:1] == (mask.shape[1],):
                row = row[:lengths[i]] if lengths is not None else row[real[i]]
            digest.update(f"{name}:{row.dtype}:{row.shape}".encode())
            digest.update(np.ascontiguousarray(row))
        keys.append(digest.hexdigest())
    return keys


def _numpy(value: torch.Tensor) -> np.ndarray:
    value = value.detach().cpu().contiguous()
    if value.dtype in (torch.bfloat16, torch.float16):  # hashed by their bits
        value = value.view(torch.int16)
    return value.numpy()


def _prefix_lengths(mask: torch.Tensor) -> list[int] | None:
    """Each row's real length when every mask is ones then zeros (right padding), else None."""
    mask = mask.detach().cpu().bool()
    lengths = mask.sum(1)
    prefix = torch.arange(mask.shape[1]) < lengths[:, None]
    return lengths.tolist() if torch.equal(prefix, mask) else None


def _autocast_state(device_type: str) -> str:
    if torch.is_autocast_enabled(device_type):
        return f"autocast:{torch.get_autocast_dtype(device_type)}"
    return "autocast:off"


class FeatureCache:
    """The cache of one frozen tower: lookups by row content, misses computed in one batch."""

    def __init__(self, tower: nn.Module, folder: Path, max_mb: float):
        self.tower = tower
        self.folder = Path(folder)
        self.max_bytes = max_mb * 2 ** 20
        self.digest = weights_digest(tower)
        self.entries: dict[str, torch.Tensor] = {}
        self.stored_bytes = 0
        self.new_entries = 0
        self.hits = self.misses = 0
        self.retired = False  # a parameter of the tower trained: its weights no longer match the keys
        self._load()

    @property
    def path(self) -> Path:
        return self.folder / f"{self.digest}.pt"

    def applies(self) -> bool:
        if not self.retired and any(p.requires_grad for p in self.tower.parameters()):
            self.retired = True
        return not self.retired

    def features(self, inputs: dict[str, torch.Tensor], compute) -> torch.Tensor:
        """`compute(inputs)`'s rows, from the store where present; the missing rows computed in eval mode."""
        device = next(iter(inputs.values())).device
        keys = row_keys(inputs, f"{device.type}|{_autocast_state(device.type)}")
        missing = [i for i, key in enumerate(keys) if key not in self.entries]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        computed = {}
        if missing:
            index = torch.tensor(missing, device=device)
            was_training = self.tower.training
            self.tower.eval()
            with torch.no_grad():
                out = compute({name: value.index_select(0, index) for name, value in inputs.items()})
            self.tower.train(was_training)
            for i, row in zip(missing, out.detach().to("cpu")):
                computed[keys[i]] = row.clone()
                self._keep(keys[i], computed[keys[i]])
        rows = [self.entries.get(key, computed.get(key)) for key in keys]
        return torch.stack(rows).to(device)

    def _keep(self, key: str, row: torch.Tensor) -> None:
        size = row.numel() * row.element_size()
        if self.stored_bytes + size <= self.max_bytes:
            self.entries[key] = row
            self.stored_bytes += size
            self.new_entries += 1

    def stats(self) -> dict:
        return {"hits": self.hits, "misses": self.misses, "entries": len(self.entries),
                "stored_mb": round(self.stored_bytes / 2 ** 20, 3), "retired": self.retired}

    def _load(self) -> None:
        """What earlier runs stored, up to the size cap."""
        for key, row in read_entries(self.path).items():
            self._keep(key, row)
        self.new_entries = 0

    def save(self) -> None:
        """Adds this run's new entries to the file, atomically (runs in parallel lose entries, never corrupt)."""
        if self.retired or not self.new_entries:
            return
        merged = {**read_entries(self.path), **self.entries}  # another run may have written since this one started
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        torch.save({"keys": list(merged), "features": torch.stack(list(merged.values()))}, tmp)
        os.replace(tmp, self.path)
        self.new_entries = 0


def read_entries(path: Path) -> dict[str, torch.Tensor]:
    """{key: features} of a cache file; empty when absent, torn or foreign (a cold start, not an error)."""
    if not path.exists():
        return {}
    try:
        saved = torch.load(path, weights_only=True)
        return {key: row.clone() for key, row in zip(saved["keys"], saved["features"], strict=True)}
    except Exception:  # noqa: BLE001 — the features are computed again
        return {}
