"""N isolated jobs at once on this machine, each with its share of the CPU threads and its own GPU.

Each job runs as `isolated.run` would run it alone (a child forked from the preloaded fork
server, its timeout, a failed record on a crash or a kill); a pool thread waits on each child.
Placement goes through a copy of the job's `environ`, which the child applies before it runs:

- threads: XMBENCH_THREADS (→ torch.set_num_threads), OMP_NUM_THREADS and MKL_NUM_THREADS are
  each job's share of `os.cpu_count()`, at least 1, so N jobs never oversubscribe the cores;
- GPUs: where CUDA devices exist, each running job gets one of them to itself through
  CUDA_VISIBLE_DEVICES (the devices this process may use, so an outer CUDA_VISIBLE_DEVICES=2,3
  is honoured).

Workers are capped, with a message saying so: to the GPU count where there are GPUs (two runs
sharing a GPU would distort each other's memory and time measurements, and could run out of
memory), else to the CPU count (a thread each at least). The share is fixed by the pool's size,
not by how many jobs a wave has, so every run of a suite is measured with the same threads.

Stopping (Ctrl-C, or the caller closing the iterator) terminates the children still running;
their records then say they were killed by SIGTERM, and a rerun redoes them.
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator

from xmbench.bench import isolated
from xmbench.bench.jobs import Job
from xmbench.bench.record import Record
from xmbench.errors import XmbenchError


class PoolExecutor:
    def __init__(self, workers: int, isolate: bool = True):
        if workers < 1:
            raise XmbenchError(f"--workers must be at least 1, not {workers}")
        if not isolate:  # runs in one process share torch's global state (threads, random generators)
            raise XmbenchError("--executor pool runs each job in its own process; --no-isolate needs --executor local")
        cpus = os.cpu_count() or 1
        self.gpus = visible_gpus()
        if self.gpus and workers > len(self.gpus):
            _say(f"--workers {workers}, but {len(self.gpus)} GPU(s): running {len(self.gpus)} at a time, one per GPU")
            workers = len(self.gpus)
        elif not self.gpus and workers > cpus:
            _say(f"--workers {workers}, but {cpus} CPU core(s): running {cpus} at a time, one thread each")
            workers = cpus
        self.workers = workers
        self.threads = max(1, cpus // workers)

    def placed(self, job: Job, gpu: str | None) -> Job:
        """A copy of the job with its share of the machine in its environ (the caller's job is left as it was)."""
        share = str(self.threads)
        placement = {"XMBENCH_THREADS": share, "OMP_NUM_THREADS": share, "MKL_NUM_THREADS": share}
        if gpu is not None:
            placement["CUDA_VISIBLE_DEVICES"] = gpu
        return dataclasses.replace(job, environ={**job.environ, **placement})

    def execute(self, jobs: list[Job], started=lambda job: None) -> Iterator[tuple[Job, Record, float]]:
        waiting = deque(jobs)
        free_gpus = deque(self.gpus)
        finished: queue.Queue = queue.Queue()
        running: dict[int, tuple[Job, Job, str | None, float, threading.Thread]] = {}
        try:
            while waiting or running:
                while waiting and len(running) < self.workers:
                    job = waiting.popleft()
                    gpu = free_gpus.popleft() if self.gpus else None
                    mine = self.placed(job, gpu)
                    started(job)
                    thread = threading.Thread(target=_run, args=(id(mine), mine, finished), daemon=True,
                                              name=f"xmbench pool: {job.variant.name} seed {job.seed}")
                    running[id(mine)] = (job, mine, gpu, time.perf_counter(), thread)
                    thread.start()
                key, outcome = finished.get()
                job, _, gpu, began, _ = running.pop(key)
                if gpu is not None:
                    free_gpus.append(gpu)
                if isinstance(outcome, BaseException):  # isolated.run itself failed (could not start a child)
                    raise outcome
                yield job, outcome, time.perf_counter() - began
        finally:
            if running:
                _stop([(mine, thread) for _, mine, _, _, thread in running.values()])


def visible_gpus() -> list[str]:
    """The CUDA devices this process may use, as CUDA_VISIBLE_DEVICES entries (none without CUDA)."""
    from xmbench.bench import env

    if not env.cuda_available():
        return []
    import torch

    count = torch.cuda.device_count()
    outer = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return outer[:count] if outer else [str(i) for i in range(count)]


def _run(key: int, job: Job, finished: queue.Queue) -> None:
    try:
        finished.put((key, isolated.run(job)))
    except BaseException as exc:  # noqa: BLE001 — handed to the iterating thread, which raises it
        finished.put((key, exc))


def _child_name(job: Job) -> str:
    return f"xmbench {job.variant.name} seed {job.seed}"  # as isolated.run names the child


def _stop(running: list[tuple[Job, threading.Thread]], grace_s: float = 10.0) -> None:
    """Terminate the children of the jobs still running and wait (a little) for their threads.

    A thread may start its child a moment after a first sweep, so sweep until the threads end.
    """
    names = {_child_name(job) for job, _ in running}
    deadline = time.monotonic() + grace_s
    while any(thread.is_alive() for _, thread in running) and time.monotonic() < deadline:
        with isolated._starting:  # no child starts while the list of children is read
            children = [c for c in multiprocessing.active_children() if c.name in names]
        for child in children:
            child.terminate()
        for _, thread in running:
            thread.join(0.1)


def _say(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"xmbench: {message}", file=sys.stderr)
