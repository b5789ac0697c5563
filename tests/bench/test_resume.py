"""A run killed after a checkpoint resumes from it and ends with the same numbers as an uninterrupted one."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from xmbench.bench.runner import run_suite
from xmbench.suite import parse_suite

ROOT = Path(__file__).resolve().parents[2]

# The child runs the suite in its own process and SIGKILLs itself right after the second checkpoint.
KILL_AFTER_SECOND_CHECKPOINT = """
import json, os, signal, sys
from xmbench.bench.runner import run_suite
from xmbench.suite import parse_suite
from xmbench.train import checkpoint

real_save, saves = checkpoint.save, []
def save_then_die(*args, **kwargs):
    real_save(*args, **kwargs)
    saves.append(1)
    if len(saves) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
checkpoint.save = save_then_die
suite = parse_suite(json.loads(sys.argv[1]))
from pathlib import Path
run_suite(suite, Path(sys.argv[2]), Path(sys.argv[3]), progress=False, isolate=False)
"""


def suite_table(tiny_base):
    train = {**tiny_base["train"], "steps": 12, "checkpoint_every": 4, "eval_every": 4}
    return {"suite": {"name": "resume"}, "base": {**tiny_base, "train": train}, "variants": {"a": {}}}


def test_a_killed_run_resumes_from_its_checkpoint_with_the_same_metrics(tiny_base, tmp_path):
    table = suite_table(tiny_base)
    records, artifacts = tmp_path / "records", tmp_path / "artifacts"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_SECOND_CHECKPOINT, json.dumps(table), str(records),
                             str(artifacts)], env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    checkpoint_file = artifacts / "resume" / "a__seed0" / "checkpoint" / "checkpoint.pt"
    assert checkpoint_file.exists() and not (records / "resume" / "a__seed0.json").exists()

    (resumed,) = run_suite(parse_suite(table), records, artifacts, progress=False, isolate=False)
    (straight,) = run_suite(parse_suite(table), tmp_path / "r2", tmp_path / "a2", progress=False, isolate=False)
    assert resumed.ok and straight.ok, (resumed.error, straight.error)
    assert [s["step"] for s in resumed.steps] == list(range(12))  # the log holds the steps before the kill too
    assert [s["loss"] for s in resumed.steps] == [s["loss"] for s in straight.steps]
    assert resumed.curve == straight.curve
    assert resumed.metrics == straight.metrics and resumed.per_query == straight.per_query
    assert not checkpoint_file.exists()  # a finished run leaves no checkpoint to resume by mistake


def test_a_checkpoint_of_another_config_is_not_resumed(tiny_base, tmp_path):
    import torch

    from xmbench.train import checkpoint

    table = suite_table(tiny_base)
    folder = tmp_path / "a" / "resume" / "a__seed0" / "checkpoint"
    folder.mkdir(parents=True)
    torch.save({"identity": "another-config:0", "step": 8}, folder / checkpoint.CHECKPOINT)
    (record,) = run_suite(parse_suite(table), tmp_path / "r", tmp_path / "a", progress=False, isolate=False)
    assert record.ok, record.error
    assert [s["step"] for s in record.steps] == list(range(12))  # started afresh


def test_a_checkpoint_holding_pickled_code_is_refused_not_run(tiny_base, tmp_path):
    import torch

    from xmbench.train import checkpoint

    class Evil:
        def __reduce__(self):
            return (exec, ("raise SystemExit('unpickled arbitrary code')",))

    folder = tmp_path / "a" / "resume" / "a__seed0" / "checkpoint"
    folder.mkdir(parents=True)
    torch.save({"identity": "x", "payload": Evil()}, folder / checkpoint.CHECKPOINT)
    (record,) = run_suite(parse_suite(suite_table(tiny_base)), tmp_path / "r", tmp_path / "a", progress=False,
                          isolate=False)
    assert not record.ok and "not a checkpoint xmbench can read safely" in record.error
