"""Decode once: loading an on-disk (manifest) split the first time, and again from the cache.

The built-in training split is exported as PNG/WAV files with a manifest (`xmbench data export`'s
format), then loaded as every isolated run loads it: cold (decode every file, resample, log-mel,
tokenise; then stored) and warm (the cached tensors, checked equal), into an empty cache folder.

Run: python benchmarks/manifest_cache.py [--items 1024] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from xmbench.config import resolve
from xmbench.data import sources
from xmbench.data.manifest import write_manifest
from xmbench.data.synthetic import make_split


def timed_load(config) -> tuple[float, object]:
    sources._load_split_cached.cache_clear()  # what a new process starts with
    started = time.perf_counter()
    split = sources.load_split(config, "train")
    return time.perf_counter() - started, split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1024)
    parser.add_argument("--json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        os.environ["XMBENCH_CACHE"] = str(Path(folder) / "cache")
        data = resolve({}).data
        raw = make_split("train", args.items, "target", image_size=data.image_size, audio_seconds=data.audio_seconds)
        manifest = write_manifest([raw], Path(folder) / "set")
        config = resolve({"data": {"name": "manifest", "manifest": str(manifest)}}).data
        cold, first = timed_load(config)
        warm, second = timed_load(config)
        same = all(torch.equal(getattr(first, m)[k], getattr(second, m)[k])
                   for m in first.modalities for k in getattr(first, m))
    result = {"items": args.items, "captions": len(first.caption_item), "cold_s": cold, "warm_s": warm,
              "speedup": cold / warm, "identical": same}
    print(f"{args.items} items ({result['captions']} captions): decoded {cold:.2f} s, from the cache {warm:.3f} s "
          f"({result['speedup']:.0f}×), tensors identical: {same}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
