"""Does the gate hold? A/A runs must pass; injected regressions must fail, naming the right rule.

Accepts a fresh baseline of the suite into a scratch folder, then runs the suite N times per
scenario with `xmbench run --force --gate`, each under its own XMBENCH_FAULT:
    aa          no fault: must pass every time
    noise       XMBENCH_FAULT=embedding_noise=1.0: must fail on a quality rule
    slowdown    XMBENCH_FAULT=slowdown=0.3: must fail on query_latency_s
Run: python benchmarks/gate_validation.py [--suite suites/smoke.toml] [--runs 10] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCENARIOS = {"aa": ("", None), "noise": ("embedding_noise=1.0", r"\.(R@1|mAP)"),
             "slowdown": ("slowdown=0.3", r"query_latency_s")}


def xmbench(*args: str, fault: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "XMBENCH_FAULT": fault}
    return subprocess.run([sys.executable, "-m", "xmbench.cli", *args], capture_output=True, text=True, env=env)


def violated_rules(output: str) -> list[str]:
    """The rule column of the gate's violation table."""
    rows = re.findall(r"^\| (\S+) \| `([^`]+)` \|", output, flags=re.MULTILINE)
    return sorted({rule for _, rule in rows})


def timing_rows(output: str) -> list[str]:
    """The comparison rows of timings, kept to see how far the machine drifts between runs."""
    return [line for line in output.splitlines() if "_s " in line and line.startswith("|")]


def busy_processes(records: Path) -> dict[str, float]:
    """Runs whose query path was timed while other processes took over 10% of the CPUs, with that share."""
    shares = {}
    for path in sorted(records.rglob("*.json")):
        share = json.loads(path.read_text()).get("costs", {}).get("latency_foreign_cpu_share")
        if share is not None and share > 0.10:
            shares[path.stem] = round(share, 3)
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="suites/smoke.toml")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--scenarios", nargs="*", default=list(SCENARIOS))
    parser.add_argument("--json")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="xmbench-gate-"))
    common = ["--records", str(scratch / "records"), "--artifacts", str(scratch / "artifacts"),
              "--baselines", str(scratch / "baselines")]
    first = xmbench("run", args.suite, "--no-progress", *common[:4])
    accepted = xmbench("baseline", "accept", args.suite, "--force", "--records", str(scratch / "records"),
                       "--baselines", str(scratch / "baselines"))
    if first.returncode or accepted.returncode:
        sys.exit(f"baseline run failed:\n{first.stderr[-2000:]}\n{accepted.stderr[-2000:]}")
    results = {}
    for scenario in args.scenarios:
        fault, expected = SCENARIOS[scenario]
        outcomes = []
        for i in range(args.runs):
            started = time.perf_counter()
            run = xmbench("run", args.suite, "--no-progress", "--force", "--gate", *common, fault=fault)
            rules = violated_rules(run.stdout)
            if expected is None:
                correct = run.returncode == 0
            else:
                correct = run.returncode == 1 and bool(rules) and all(re.search(expected, r) for r in rules)
            outcomes.append({"exit": run.returncode, "rules": rules, "correct": correct,
                             "seconds": round(time.perf_counter() - started, 1), "timings": timing_rows(run.stdout),
                             "busy_processes": busy_processes(scratch / "records")})
            print(f"{scenario} {i + 1}/{args.runs}: exit {run.returncode}, rules {rules or '-'}, "
                  f"{'as expected' if correct else 'WRONG'}", flush=True)
        results[scenario] = {"fault": fault, "correct": sum(o["correct"] for o in outcomes), "runs": args.runs,
                             "outcomes": outcomes}
    for scenario, result in results.items():
        print(f"{scenario}: {result['correct']}/{result['runs']} as expected")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
