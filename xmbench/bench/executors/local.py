"""One job at a time on this machine: each in an isolated child process, or in this process."""
from __future__ import annotations

import time
from collections.abc import Iterator

from xmbench.bench import isolated
from xmbench.bench.jobs import Job
from xmbench.bench.record import Record


class LocalExecutor:
    def __init__(self, isolate: bool = True, progress: bool = True):
        self.isolate, self.progress = isolate, progress

    def execute(self, jobs: list[Job], started=lambda job: None) -> Iterator[tuple[Job, Record, float]]:
        for job in jobs:
            started(job)
            began = time.perf_counter()
            record = isolated.run(job) if self.isolate else job.run_here(self.progress)
            yield job, record, time.perf_counter() - began
