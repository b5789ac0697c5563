"""The pool executor: N isolated jobs at once, each with its share of the CPU threads and its own GPU."""
import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import user_model
from xmbench.bench import isolated
from xmbench.bench.executors import pool
from xmbench.bench.executors.pool import PoolExecutor
from xmbench.bench.jobs import Job
from xmbench.bench.record import Record, read_records
from xmbench.bench.runner import run_suite
from xmbench.errors import XmbenchError
from xmbench.suite import parse_suite

ROOT = Path(__file__).resolve().parents[3]
SLEEPY, CRASHING = "tests.bench.faulty_models:sleepy", "tests.bench.faulty_models:crashing"


def suite_of(base, variants):
    return parse_suite({"suite": {"name": "pool"}, "base": base, "variants": variants})


THREE = {"a": {}, "b": {"model.*.adapter.rank": 4}, "c": {"model.*.adapter.rank": 2}}


def test_two_workers_match_the_local_runner_and_failures_stay_with_their_job(tiny_base, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)  # user models are imported from the working folder
    share = max(1, (os.cpu_count() or 1) // 2)
    # The hanging run goes first: it holds one worker until its timeout while the other worker runs the rest.
    variants = {"hangs": user_model(SLEEPY), "killed": user_model(CRASHING), **THREE}
    records = run_suite(suite_of(tiny_base, variants), tmp_path / "rec", tmp_path / "art", progress=False,
                        timeout_s=15, executor=PoolExecutor(workers=2))
    hangs, killed, *fine = records
    assert [r.variant for r in records] == ["hangs", "killed", "a", "b", "c"]  # suite order, whatever the finishing order
    assert all(r.ok for r in fine), [r.error for r in fine]
    assert killed.status == "failed" and "killed by SIGKILL" in killed.error
    assert hangs.status == "failed" and hangs.error.startswith("Timeout: exceeded 15 s")
    assert [r.env["torch_threads"] for r in fine] == [share] * 3  # each child ran with its share of the cores
    assert sorted(r.status for r in read_records(tmp_path / "rec")) == ["failed", "failed", "ok", "ok", "ok"]

    # The same runs one at a time with the same threads: nothing measured changes.
    monkeypatch.setenv("XMBENCH_THREADS", str(share))
    local = run_suite(suite_of(tiny_base, THREE), tmp_path / "local", tmp_path / "art-local", progress=False)
    for mine, theirs in zip(fine, local):
        assert mine.metrics == theirs.metrics
        assert mine.per_query == theirs.per_query
    assert "running" in capsys.readouterr().err


def test_closing_the_iterator_stops_the_children_still_running(tiny_base, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    suite = suite_of(tiny_base, {"killed": user_model(CRASHING), "hangs": user_model(SLEEPY)})
    jobs = [Job("pool", None, v, 0, tmp_path / "rec", tmp_path / "art", 300.0, v.name) for v in suite.variants]
    began = time.monotonic()
    results = PoolExecutor(workers=2).execute(jobs)
    job, record, _ = next(results)
    assert job.variant.name == "killed" and "SIGKILL" in record.error
    results.close()  # as when the runner is interrupted: the hanging child is terminated, not waited for
    assert time.monotonic() - began < 60
    assert not [c for c in multiprocessing.active_children() if c.name.startswith("xmbench hangs")]
    (stopped,) = [r for r in read_records(tmp_path / "rec") if r.variant == "hangs"]
    assert "killed by SIGTERM" in stopped.error  # a rerun redoes it


# Scheduling, without processes: isolated.run replaced by a stand-in that notes what each job was given.

def jobs_of(tmp_path, n):
    suite = suite_of({"train": {"steps": 1}}, {f"v{i}": {"train.lr": 1e-3 * (i + 1)} for i in range(n)})
    return [Job("pool", None, v, 0, tmp_path / "rec", tmp_path / "art", 30.0, v.name) for v in suite.variants]


class StandIn:
    def __init__(self, seconds=0.05):
        self.seconds, self.lock, self.running, self.seen = seconds, threading.Lock(), set(), []

    def __call__(self, job):
        gpu = job.environ.get("CUDA_VISIBLE_DEVICES")
        with self.lock:
            assert gpu is None or gpu not in self.running, f"GPU {gpu} given to two running jobs"
            self.running.add(gpu)
            self.seen.append(dict(job.environ))
        time.sleep(self.seconds)
        with self.lock:
            self.running.discard(gpu)
        return Record(suite=job.suite, variant=job.variant.name, variant_id="x", seed=job.seed, status="ok", config={})


def test_each_running_job_gets_its_own_gpu_and_workers_are_capped_to_the_gpus(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pool, "visible_gpus", lambda: ["2", "5"])  # as with an outer CUDA_VISIBLE_DEVICES=2,5
    stand_in = StandIn()
    monkeypatch.setattr(isolated, "run", stand_in)
    executor = PoolExecutor(workers=4)
    assert executor.workers == 2 and "running 2 at a time, one per GPU" in capsys.readouterr().err
    jobs = jobs_of(tmp_path, 5)
    begun = []
    done = list(executor.execute(jobs, started=begun.append))
    assert sorted(j.variant.name for j, _, _ in done) == [j.variant.name for j in jobs] == [j.variant.name for j in begun]
    assert {e["CUDA_VISIBLE_DEVICES"] for e in stand_in.seen} == {"2", "5"}
    assert {e["XMBENCH_THREADS"] for e in stand_in.seen} == {str(max(1, (os.cpu_count() or 1) // 2))}
    assert all(j.environ == {} for j in jobs)  # the caller's jobs are left as they were


def test_never_more_jobs_than_cores_without_gpus(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pool, "visible_gpus", lambda: [])
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    stand_in = StandIn()
    monkeypatch.setattr(isolated, "run", stand_in)
    executor = PoolExecutor(workers=3)
    assert (executor.workers, executor.threads) == (2, 1) and "running 2 at a time" in capsys.readouterr().err
    list(executor.execute(jobs_of(tmp_path, 3)))
    assert all(e["XMBENCH_THREADS"] == e["OMP_NUM_THREADS"] == e["MKL_NUM_THREADS"] == "1" and "CUDA_VISIBLE_DEVICES" not in e
               for e in stand_in.seen)
    assert PoolExecutor(workers=1).threads == 2


def test_a_pool_needs_isolation_and_a_worker():
    with pytest.raises(XmbenchError, match="--no-isolate needs --executor local"):
        PoolExecutor(workers=2, isolate=False)
    with pytest.raises(XmbenchError, match="at least 1"):
        PoolExecutor(workers=0)
