"""Loading splits: an on-disk split is decoded once and read from the cache until a file changes."""
import os

import torch

from xmbench.config import resolve
from xmbench.data import sources
from xmbench.data.manifest import write_manifest
from xmbench.data.synthetic import make_split


def test_a_manifest_split_is_decoded_once_until_its_files_change(tiny_base, tmp_path, monkeypatch):
    splits = [make_split(s, n, "target", image_size=32, audio_seconds=0.5) for s, n in (("train", 6), ("test", 4))]
    manifest = write_manifest(splits, tmp_path / "set")
    config = resolve(tiny_base, {"data.name": "manifest", "data.manifest": str(manifest)}).data
    decoded = []
    real_load_raw = sources.load_raw
    monkeypatch.setattr(sources, "load_raw", lambda cfg, split: decoded.append(split) or real_load_raw(cfg, split))

    def load_in_a_new_process(split="train"):
        sources._load_split_cached.cache_clear()  # as each isolated run starts with an empty memory cache
        return sources.load_split(config, split)

    first, second = load_in_a_new_process(), load_in_a_new_process()
    assert decoded == ["train"]  # the second came from the cache
    assert first.ids == second.ids and torch.equal(first.image["pixel_values"], second.image["pixel_values"])
    assert torch.equal(first.audio["input_values"], second.audio["input_values"])
    load_in_a_new_process("test")
    assert decoded == ["train", "test"]  # each split its own entry
    image = next(manifest.parent.rglob("*.png"))
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a file touched: decoded again
    load_in_a_new_process()
    assert decoded == ["train", "test", "train"]
