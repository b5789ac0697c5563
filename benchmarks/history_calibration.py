"""Does step detection hold? No false steps over A/A histories; an injected fault found at its commit.

Measures pools of runs of a tiny suite (one `xmbench run --in-process` per scenario, one record per
seed): without a fault, with XMBENCH_FAULT=embedding_noise=1.0 and with XMBENCH_FAULT=slowdown=0.3.
Then assembles N synthetic histories per scenario of --commits commits, each commit holding --seeds
runs drawn from a pool (without repeats within a commit): an A/A history draws every commit from the
clean pool; a fault history draws commits from --fault-at on from the fault's pool. Drawing the
seeds per commit makes commits differ as runs do where they are not bit-reproducible (GPU, other
threads), the harder case: on CPU a real A/A history repeats the same quality numbers commit after
commit. Each history goes through `xmbench.history.steps.detect` over every series with the suite's
gate rules, exactly as `xmbench history check` does, and the counts are written to
reports/benchmarks/history_calibration.{json,md}.

Run: python benchmarks/history_calibration.py [--histories 50] [--commits 12] [--seeds 2] [--pool 16]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from xmbench.bench.compare import BUSY_ABOVE, busy
from xmbench.bench.gate import parse_gates
from xmbench.bench.record import read_records
from xmbench.history import steps
from xmbench.history.series import metric_names
from xmbench.history.store import Commit, make_entries

SCENARIOS = {"aa": "", "noise": "embedding_noise=1.0", "slowdown": "slowdown=0.3"}
EXPECTED_KIND = {"noise": "quality", "slowdown": "timing"}
SUITE = """[suite]
name = "calibration"
seeds = {seeds}

[base.data]
domain = "source"
max_objects = 1
n_train = 96
n_val = 16
n_test = 48
image_size = 32
audio_seconds = 0.5
n_mels = 32

[base.model]
embed_dim = 16
text = {{ size = "tiny" }}
image = {{ size = "tiny" }}
audio = {{ size = "tiny" }}

[base.train]
steps = 30
batch_size = 16
lr = 5e-3
warmup_steps = 3
eval_every = 0

[base.foundation]
enabled = false

[base.profile]
flops = false
alignment = false

[variants.a]
"""


def measure_pool(suite: Path, scratch: Path, fault: str) -> list:
    """One in-process run of every seed of the suite under a fault; its records."""
    records = scratch / f"records-{fault or 'clean'}"
    env = {**os.environ, "XMBENCH_FAULT": fault, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "xmbench.cli", "run", str(suite), "--in-process", "--no-progress",
                           "--records", str(records), "--artifacts", str(scratch / "artifacts")],
                          capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit(f"pool run with XMBENCH_FAULT={fault!r} failed:\n{done.stderr[-3000:]}")
    return [r for r in read_records(records, "calibration") if r.ok]


def history(pools: dict, scenario: str, commits: int, seeds: int, fault_at: int, rng) -> list:
    """Entries of one synthetic history, oldest first."""
    entries = []
    for i in range(commits):
        pool = pools[scenario if scenario != "aa" and i >= fault_at else "aa"]
        chosen = [pool[j] for j in rng.choice(len(pool), size=seeds, replace=False)]
        commit = Commit(f"{i:040x}", f"2024-01-{i + 1:02d}T00:00:00+00:00", f"commit {i}")
        entries.extend(make_entries(chosen, commit, "calibration", dirty=False))
    return entries


def judge(entries: list, rules) -> list:
    cache: dict = {}
    return [s for m in metric_names(entries) for s in steps.detect(entries, m, rules, cache) if s.judged]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--histories", type=int, default=50)
    parser.add_argument("--commits", type=int, default=12)
    parser.add_argument("--seeds", type=int, default=2, help="runs per commit")
    parser.add_argument("--pool", type=int, default=16, help="measured runs per scenario")
    parser.add_argument("--fault-at", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks/history_calibration"))
    args = parser.parse_args()
    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="xmbench-history-calibration-"))
    suite = scratch / "calibration.toml"
    suite.write_text(SUITE.format(seeds=list(range(args.pool))))
    pools = {name: measure_pool(suite, scratch, fault) for name, fault in SCENARIOS.items()}
    measured_s = time.perf_counter() - started
    rules = parse_gates({})  # the default gates: R@1 and mAP 2 points, query latency 10%, costs exact
    rng = np.random.default_rng(0)
    results = {}
    for scenario in SCENARIOS:
        outcomes = []
        for _ in range(args.histories):
            found = judge(history(pools, scenario, args.commits, args.seeds, args.fault_at, rng), rules)
            regressions = [s for s in found if s.verdict == steps.REGRESSION]
            at_fault = [s for s in regressions if s.index == args.fault_at
                        and steps.kind_of(s.metric) == EXPECTED_KIND.get(scenario)]
            elsewhere = [f"{s.verdict} {s.metric} @{s.index}" for s in found if s not in at_fault]
            outcomes.append({"judged_steps": len(found), "regressions": len(regressions), "at_fault_commit": len(at_fault),
                             "elsewhere": len(elsewhere), "elsewhere_steps": elsewhere,
                             "head_fails": bool(steps.head_regressions(found))})
        results[scenario] = {
            "fault": SCENARIOS[scenario], "histories": args.histories,
            "histories_with_a_false_step": sum(o["elsewhere"] > 0 for o in outcomes),
            "false_steps": sum(o["elsewhere"] for o in outcomes),
            "found_at_the_fault_commit": sum(o["at_fault_commit"] > 0 for o in outcomes) if scenario != "aa" else None,
            "check_fails_at_head": sum(o["head_fails"] for o in outcomes),
            "other_steps": dict(Counter(x for o in outcomes for x in o["elsewhere_steps"]).most_common(8))}
        print(f"{scenario}: {results[scenario]}", flush=True)
    payload = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
               "pool_runs": {k: len(v) for k, v in pools.items()},
               # compare leaves a process out of timing judgements when others took over BUSY_ABOVE of the CPUs
               "pool_runs_crowded": {k: sum(busy(r, "query_latency_s") for r in v) for k, v in pools.items()},
               "measuring_s": round(measured_s, 1),
               "total_s": round(time.perf_counter() - started, 1), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(payload))
    print(f"wrote {args.out}.json and .md in {payload['total_s']} s")


def markdown(payload: dict) -> str:
    s = payload["settings"]
    lines = ["# History step detection: calibration", "",
             f"Written by `benchmarks/history_calibration.py` in {payload['total_s']} s on this 2-core machine "
             f"({payload['measuring_s']} s measuring pools of {payload['pool_runs']} runs). {s['histories']} synthetic "
             f"histories per scenario of {s['commits']} commits × {s['seeds']} runs drawn from the pools; a fault from "
             f"commit {s['fault_at']} on; the default gate rules.", "",
             "| scenario | fault | histories with a false step | false steps | found at the fault commit | check fails at head |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, r in payload["results"].items():
        found = "—" if r["found_at_the_fault_commit"] is None else f"{r['found_at_the_fault_commit']}/{r['histories']}"
        lines.append(f"| {name} | `{r['fault'] or 'none'}` | {r['histories_with_a_false_step']}/{r['histories']} | "
                     f"{r['false_steps']} | {found} | {r['check_fails_at_head']}/{r['histories']} |")
    lines += ["", f"Runs whose query path other processes crowded (over {BUSY_ABOVE:.0%} of the CPUs; compare leaves them out "
              f"of timing judgements, so a timing step among them is never judged): {payload['pool_runs_crowded']}.", "",
              "Most frequent steps other than the fault's (verdict, series, commit index):", ""]
    for name, r in payload["results"].items():
        lines.append(f"- {name}: " + (", ".join(f"{k} ×{v}" for k, v in r["other_steps"].items()) or "none"))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
