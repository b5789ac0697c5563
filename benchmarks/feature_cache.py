"""The frozen-tower feature cache: one training epoch of each frozen tower, without the cache, with it cold, and warm.

On the reference model (foundation weights, every tower frozen) each tower encodes the training
split in shuffled batches of train.batch_size, as the engine's epochs do:
  uncached — the tower runs on every batch (what every epoch costs without the cache);
  first    — the first epoch with the cache: every row runs once, and is stored;
  second   — the second epoch: every row read from the cache;
  next_run — a new cache on the same weights, read from the file the first ones saved (the next
             variant or seed of a suite).
Target: the second epoch ≥ 10× faster than the first. Features are checked equal to uncached.

Run: python benchmarks/feature_cache.py [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from xmbench.config import RunConfig
from xmbench.data.sources import load_split
from xmbench.models.feature_cache import FeatureCache
from xmbench.models.reference import build_reference
from xmbench.registry import load_builtins
from xmbench.train.foundation import foundation_state


def epoch(tower, split, modality: str, batch_size: int, seed: int) -> tuple[float, torch.Tensor]:
    """Seconds for one pass over the split in shuffled batches, and the features in row order."""
    order = torch.randperm(split.n_rows(modality), generator=torch.Generator().manual_seed(seed))
    features = torch.empty(len(order), tower.hidden_size)
    started = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(order), batch_size):
            rows = order[i:i + batch_size]
            features[rows] = tower(split.rows(modality, rows))
    return time.perf_counter() - started, features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json")
    args = parser.parse_args()
    load_builtins()
    config = RunConfig()
    split = load_split(config.data, "train")
    state, _ = foundation_state(config, progress=True)
    model = build_reference(config, split.modalities, state, adapters=dict.fromkeys(split.modalities, "frozen"))
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for modality in split.modalities:
            tower = model.towers[modality].eval()
            uncached, reference = epoch(tower, split, modality, config.train.batch_size, seed=0)
            tower.feature_cache = FeatureCache(tower, Path(folder), max_mb=1024)
            first, _ = epoch(tower, split, modality, config.train.batch_size, seed=1)
            second, cached = epoch(tower, split, modality, config.train.batch_size, seed=2)
            tower.feature_cache.save()
            tower.feature_cache = FeatureCache(tower, Path(folder), max_mb=1024)
            next_run, _ = epoch(tower, split, modality, config.train.batch_size, seed=3)
            tower.feature_cache = None
            results[modality] = {"rows": split.n_rows(modality), "uncached_s": uncached, "first_s": first,
                                 "second_s": second, "next_run_s": next_run, "first_over_second": first / second,
                                 "uncached_over_second": uncached / second,
                                 "max_abs_difference": float((cached - reference).abs().max())}
            r = results[modality]
            print(f"{modality:>6} ({r['rows']} rows): uncached {uncached:.3f} s, first {first:.3f} s, "
                  f"second {second:.4f} s ({r['first_over_second']:.0f}× faster than the first), "
                  f"next run {next_run:.4f} s; max |cached − uncached| {r['max_abs_difference']:.1e}")
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": torch.get_num_threads(), "towers": results}, indent=2))


if __name__ == "__main__":
    main()
