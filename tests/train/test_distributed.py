"""DDP on the CPU (gloo): 2 ranks of batch B give the loss and gradients of one process of batch 2B."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("ddp_equivalence.py")


def run(tmp_path, nproc: int, batch: int, loss_kind: str) -> dict:
    out = tmp_path / f"{nproc}-{loss_kind}.pt"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    prefix = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)] \
        if nproc > 1 else [sys.executable]
    finished = subprocess.run([*prefix, str(SCRIPT), str(out), str(batch), loss_kind], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return torch.load(out, weights_only=True)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """One process on the global batch of 16: what both loss kinds on two ranks must equal."""
    return run(tmp_path_factory.mktemp("single"), 1, 16, "global")


# The global loss is the one process's computation split across ranks: 1e-6 relative. The local loss
# averages each rank's rows first and sums in another order: float32 rounding reaches ~1.3e-6 there.
@pytest.mark.parametrize("loss_kind, tolerance", [("global", 1e-6), ("local", 1e-5)])
def test_two_ranks_equal_one_process_on_the_global_batch(tmp_path, single, loss_kind, tolerance):
    ranks = run(tmp_path, 2, 8, loss_kind)
    assert ranks["samples"] == single["samples"] == [16, 16]  # the global batch, drawn alike
    assert ranks["losses"] == pytest.approx(single["losses"], rel=tolerance)
    assert set(ranks["grads"]) == set(single["grads"])
    for name, grad in single["grads"].items():
        difference = (ranks["grads"][name] - grad).norm() / grad.norm().clamp(min=1e-12)
        assert difference < tolerance, (name, float(difference))


def test_xmbench_run_with_two_ranks_records_them(tmp_path):
    suite = tmp_path / "ddp.toml"
    suite.write_text((ROOT / "tests/bench/three_variants.toml").read_text().replace('name = "three"', 'name = "ddp"')
                     .replace("steps = 40", "steps = 4").split("[variants.a]")[0] + "[variants.a]\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "xmbench.cli", "run", str(suite), "--nproc", "2", "--records",
                             str(tmp_path / "records"), "--artifacts", str(tmp_path / "art"), "--no-progress"],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "records" / "ddp" / "a__seed0.json").read_text())
    assert record["status"] == "ok" and record["costs"]["ranks"] == 2 and record["costs"]["global_batch"] == 16
    assert set(record["metrics"]) >= {"t2i", "a2i"}
