"""Isolated runs: each variant × seed in a child process forked from a preloaded server."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import user_model
from xmbench.bench.record import read_records
from xmbench.bench.runner import run_suite
from xmbench.suite import parse_suite

ROOT = Path(__file__).resolve().parents[2]


def suite_of(base, variants):
    return parse_suite({"suite": {"name": "iso"}, "base": base, "variants": variants})


def test_isolated_run_matches_in_process_and_failures_are_recorded(tiny_base, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # user models are imported from the working folder
    suite = suite_of(tiny_base, {"fine": {}, "killed": user_model("tests.bench.faulty_models:crashing"),
                                 "hangs": user_model("tests.bench.faulty_models:sleepy")})
    # the hanging run is waited for until the timeout: 15 s, several times what the tiny "fine" run takes
    fine, killed, hangs = run_suite(suite, tmp_path / "rec", tmp_path / "art", progress=False, timeout_s=15)
    assert fine.ok, fine.error
    assert killed.status == "failed" and "killed by SIGKILL" in killed.error and "out-of-memory" in killed.error
    assert hangs.status == "failed" and hangs.error.startswith("Timeout: exceeded 15 s")
    (same,) = run_suite(suite_of(tiny_base, {"fine": {}}), tmp_path / "rec2", tmp_path / "art", progress=False,
                        isolate=False)
    assert same.metrics == fine.metrics  # the process boundary changes nothing measured
    assert sorted(r.status for r in read_records(tmp_path / "rec")) == ["failed", "failed", "ok"]


def test_a_suite_killed_mid_run_resumes_without_redoing_finished_runs(tmp_path):
    suite = tmp_path / "three.toml"
    suite.write_text((ROOT / "tests" / "bench" / "three_variants.toml").read_text())
    records = tmp_path / "records" / "three"
    command = [sys.executable, "-m", "xmbench.cli", "run", str(suite), "--records", str(tmp_path / "records"),
               "--artifacts", str(tmp_path / "art"), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    suite_process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while not list(records.glob("*.json")) and time.time() < deadline:
        time.sleep(0.2)
    suite_process.send_signal(signal.SIGKILL)
    suite_process.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in records.glob("*.json")}
    assert 1 <= len(finished) < 3
    for path in records.iterdir():  # nothing half-written: every file that exists is valid JSON
        json.loads(path.read_text())
    resumed = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr.count("reusing complete record") == len(finished)
    assert all(records.joinpath(name).stat().st_mtime_ns == mtime for name, mtime in finished.items())
    assert sorted(p.name for p in records.glob("*.json")) == ["a__seed0.json", "b__seed0.json", "c__seed0.json"]
