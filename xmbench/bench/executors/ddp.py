"""Each run on N ranks of this machine, launched with torchrun (DDP): one model, the global batch split.

Trained variants go to `torchrun --standalone --nproc_per_node N -m xmbench.bench.ddp_worker`;
rank 0 writes the record, and a run that crashes or passes its timeout gets a failed record
as with isolated runs. Derived runs train nothing, so they run isolated on one process.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from xmbench.bench import isolated
from xmbench.bench.jobs import Job, freeze
from xmbench.bench.record import Record, read_record


class DdpExecutor:
    def __init__(self, nproc: int):
        self.nproc = nproc

    def execute(self, jobs: list[Job], started=lambda job: None) -> Iterator[tuple[Job, Record, float]]:
        for job in jobs:
            started(job)
            began = time.perf_counter()
            record = isolated.run(job) if job.derived else self._launch(job)
            yield job, record, time.perf_counter() - began

    def _launch(self, job: Job) -> Record:
        before = job.record_path.stat().st_mtime_ns if job.record_path.exists() else None
        with tempfile.TemporaryDirectory(prefix="xmbench-ddp-") as scratch:
            spec = Path(scratch) / "job.pkl"
            spec.write_bytes(freeze(job))
            command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
                       "--nproc_per_node", str(self.nproc), "-m", "xmbench.bench.ddp_worker", str(spec)]
            try:
                finished = subprocess.run(command, capture_output=True, text=True, timeout=job.timeout_s)
            except subprocess.TimeoutExpired:
                return job.fail(f"Timeout: exceeded {job.timeout_s:.0f} s and was killed (torchrun, {self.nproc} ranks)")
        if job.record_path.exists() and job.record_path.stat().st_mtime_ns != before:
            return read_record(job.record_path)
        tail = "\n".join(finished.stderr.strip().splitlines()[-5:])
        return job.fail(f"Crash: torchrun with {self.nproc} ranks exited with code {finished.returncode} without a "
                        f"record:\n{tail}")
