"""The Ray executor: jobs as tasks on a local Ray instance, records written by the driver."""
import os
import signal
import types
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from tests.bench.faulty_models import Sleepy  # noqa: E402
from tests.conftest import TINY_BASE, user_model  # noqa: E402
from xmbench.bench.executors.ray import RAY_MISSING, RayExecutor  # noqa: E402
from xmbench.bench.record import read_records  # noqa: E402
from xmbench.bench.runner import run_suite  # noqa: E402
from xmbench.errors import XmbenchError  # noqa: E402
from xmbench.suite import parse_suite  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
HERE = "tests.bench.executors.test_ray"
MARKERS = "XMBENCH_TEST_MARKERS"  # XMBENCH_* travels to the tasks


def first_time(what: str) -> bool:
    """True the first time a run asks (a marker file in the test's folder), so a rerun behaves."""
    marker = Path(os.environ[MARKERS]) / what
    if marker.exists():
        return False
    marker.touch()
    return True



def reference(config):
    """The tiny reference model, as a user's factory wrapping it: it builds from TINY_BASE, for a factory
    variant sets none of the reference model's keys (xmbench.models.applicability)."""
    from xmbench.config import MODALITIES, resolve
    from xmbench.models.reference import build_reference

    return build_reference(resolve(TINY_BASE), MODALITIES)


def dies_once(config):
    """A worker killed mid-run (as by the out-of-memory killer), the first time only."""
    if first_time("dies"):
        os.kill(os.getpid(), signal.SIGKILL)
    return reference(config)


def hangs_once(config):
    return Sleepy() if first_time("hangs") else reference(config)


def suite_of(base, variants):
    return parse_suite({"suite": {"name": "rayed"}, "base": base, "variants": variants})


@pytest.fixture(scope="module")
def executor():
    with RayExecutor(workers=2) as executor:  # a local Ray instance for this module, stopped at its end
        yield executor
    assert not ray.is_initialized()


def test_ray_matches_the_local_runner_a_dead_worker_is_recorded_and_a_rerun_completes_only_the_missing_runs(
        executor, tiny_base, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)  # user models are imported from the working folder
    monkeypatch.setenv(MARKERS, str(tmp_path))
    suite = suite_of(tiny_base, {"a": {}, "dies": user_model(f"{HERE}:dies_once"), "b": {"model.*.adapter.rank": 4}})
    a, dies, b = run_suite(suite, tmp_path / "rec", tmp_path / "art", progress=False, executor=executor)
    assert a.ok and b.ok, (a.error, b.error)
    assert dies.status == "failed" and dies.error.startswith("Crash: the Ray worker running it died: WorkerCrashedError")
    assert [r.env["torch_threads"] for r in (a, b)] == [max(1, (os.cpu_count() or 1) // 2)] * 2
    assert sorted(r.status for r in read_records(tmp_path / "rec")) == ["failed", "ok", "ok"]  # written by the driver

    # The same runs one at a time on this machine, with the same threads: nothing measured changes.
    monkeypatch.setenv("XMBENCH_THREADS", str(a.env["torch_threads"]))
    local = run_suite(suite_of(tiny_base, {"a": {}, "b": {"model.*.adapter.rank": 4}}), tmp_path / "local",
                      tmp_path / "art-local", progress=False)
    for mine, theirs in zip((a, b), local):
        assert mine.metrics == theirs.metrics
        assert mine.per_query == theirs.per_query

    capsys.readouterr()
    again = run_suite(suite, tmp_path / "rec", tmp_path / "art", progress=False, executor=executor)
    err = capsys.readouterr().err
    assert err.count("reusing complete record") == 2 and "dies seed=0: running" in err and "a seed=0: running" not in err
    assert all(r.ok for r in again)
    assert again[0].created_at == a.created_at and again[2].created_at == b.created_at


@pytest.mark.slow
def test_a_run_past_its_timeout_is_killed_and_recorded(executor, tiny_base, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv(MARKERS, str(tmp_path))
    suite = suite_of(tiny_base, {"hangs": user_model(f"{HERE}:hangs_once"), "a": {}})
    hangs, a = run_suite(suite, tmp_path / "rec", tmp_path / "art", progress=False, timeout_s=40, executor=executor)
    assert a.ok, a.error
    assert hangs.status == "failed" and hangs.error.startswith("Timeout: exceeded 40 s and was killed (Ray worker pid ")
    hangs, _ = run_suite(suite, tmp_path / "rec", tmp_path / "art", progress=False, timeout_s=40, executor=executor)
    assert hangs.ok, hangs.error


def test_without_ray_the_error_says_how_to_install_it(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(XmbenchError) as error:
        RayExecutor()
    assert str(error.value) == RAY_MISSING == "--executor ray needs Ray: pip install -e '.[ray]' (or pip install 'ray>=2.9')"


def planned(workers, *nodes):
    executor = RayExecutor(workers=workers)
    executor.ray = types.SimpleNamespace(nodes=lambda: [{"Alive": True, "Resources": r} for r in nodes]
                                         + [{"Alive": False, "Resources": {"CPU": 64.0}}])
    return executor.plan()


def test_tasks_take_a_gpu_each_or_a_share_of_the_cpus_and_never_more_run_than_fit(capsys):
    gpu_nodes = ({"CPU": 16.0, "GPU": 2.0}, {"CPU": 8.0, "GPU": 4.0}, {"CPU": 4.0})
    assert planned(None, *gpu_nodes) == ({"num_gpus": 1, "num_cpus": 2}, 6)
    assert planned(8, *gpu_nodes) == ({"num_gpus": 1, "num_cpus": 2}, 6)
    assert "room for 6 task(s) of one GPU each: running 6 at a time" in capsys.readouterr().err
    assert planned(2, *gpu_nodes) == ({"num_gpus": 1, "num_cpus": 2}, 2)
    assert planned(None, {"CPU": 16.0}, {"CPU": 8.0}) == ({"num_cpus": 8}, 3)  # a whole (smallest) node each
    assert planned(4, {"CPU": 16.0}, {"CPU": 8.0}) == ({"num_cpus": 6}, 3)
    assert planned(2, {"CPU": 2.0}) == ({"num_cpus": 1}, 2)
    assert planned(5, {"CPU": 2.0}) == ({"num_cpus": 1}, 2)
    with pytest.raises(XmbenchError, match="no CPUs"):
        planned(None, {"CPU": 0.0})
