"""Latency probe stability: the same probe in N fresh processes; the spread of each p50.

Each process builds the reference model from the cached foundation (no training) and runs
xmbench's latency probe (every encoder and query path at batch 1, 8 and 64) on the built-in
test split. The spread of a path is (max − min) / median of its p50 over the processes:
process-to-process drift is what a comparison between two runs has to live with.

Run: python benchmarks/probe_stability.py [--runs 5] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys


def probe_once() -> dict[str, float]:
    import torch

    from xmbench.config import RunConfig
    from xmbench.data.sources import load_split
    from xmbench.models.reference import build_reference
    from xmbench.profile.latency import probe_latency
    from xmbench.registry import load_builtins
    from xmbench.train.foundation import foundation_state

    load_builtins()
    config = RunConfig()
    split = load_split(config.data, "test")
    state, _ = foundation_state(config, progress=False)
    torch.manual_seed(0)
    model = build_reference(config, split.modalities, state).eval()
    timings = probe_latency(model, split, ["t2i", "i2t", "a2t"], config.profile.batch_sizes,
                            config.profile.min_repeats, config.profile.min_time_s)
    return {name: m.percentile(50) for name, m in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(probe_once()))
        return
    runs = []
    for index in range(args.runs):
        out = subprocess.run([sys.executable, __file__, "--worker"], capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"process {index + 1}/{args.runs} done", flush=True)
    rows = {}
    for name in sorted(runs[0]):
        values = [r[name] for r in runs]
        median = statistics.median(values)
        rows[name] = {"p50_ms": [round(1e3 * v, 3) for v in values], "median_ms": 1e3 * median,
                      "spread": (max(values) - min(values)) / median}
        print(f"{name:22s} p50 ms {' '.join(f'{1e3 * v:8.2f}' for v in values)}   spread {100 * rows[name]['spread']:5.1f}%")
    spreads = [r["spread"] for r in rows.values()]
    print(f"spread of p50 over {args.runs} processes: median {100 * statistics.median(spreads):.1f}%, "
          f"max {100 * max(spreads):.1f}%")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
