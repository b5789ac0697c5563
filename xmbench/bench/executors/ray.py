"""Jobs as Ray tasks, on a local Ray instance or an existing cluster (an optional extra: `pip install -e '.[ray]'`).

Each job is one Ray task in a fresh worker process (`max_calls=1`, as isolated as a forked child
and leaving no GPU memory behind), never retried (a run that crashed or ran out of memory once
would do so again). The task runs the job as `Job.run_here` does and hands the record back; the
driver writes it (atomically), so records land in the driver's records folder wherever the task ran.

Resources: where the cluster has GPUs, a task takes one (Ray sets its CUDA_VISIBLE_DEVICES) and
its node's CPUs per GPU; else a share of the CPUs: the cluster's CPUs over `workers`, or with no
`workers` a whole (smallest) node. The task sets torch's threads, OMP_NUM_THREADS and
MKL_NUM_THREADS to the CPUs it was given. At most as many tasks are in flight as the cluster can
run at once (and at most `workers`), so a task starts when it is submitted.

The task starts by reporting in (a first value from a generator task); its timeout counts from
then. A task that has not started within its timeout (a busy shared cluster) is cancelled
and recorded as such. Past its timeout a task is cancelled with force, which kills its worker,
and the job gets a failed record "Timeout: exceeded … s and was killed". A worker that dies
(a segfault, SIGKILL, the kernel's or Ray's out-of-memory killer, a lost node) gives a failed
record "Crash: the Ray worker running it died: …". An exception inside the run is already a
failed record (xmbench.bench.runner.run_variant).

Settings travel with the task: the driver's XMBENCH_*, HF_* and TRANSFORMERS_* variables (as
the runtime environment's env_vars at connection, so they hold from the worker's first import,
and again with each task as they are at submission), and the driver's working folder, which the
task enters and puts first on sys.path so that user models and plugins named by import path are
found; the job travels as bytes (xmbench.bench.jobs.freeze), read once that is done.
Nothing is uploaded or installed (no working_dir, pip or conda runtime environment): a
multi-node cluster needs the same Python environment and, for user models, artifacts of
derived runs and on-disk data sets, the same paths on every node (a shared filesystem).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import socket
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from xmbench.bench.jobs import Job, freeze, thaw
from xmbench.bench.record import Record, write_record
from xmbench.errors import XmbenchError

RAY_MISSING = "--executor ray needs Ray: pip install -e '.[ray]' (or pip install 'ray>=2.9')"
FORWARDED = ("XMBENCH_", "HF_", "TRANSFORMERS_")


def import_ray():
    try:
        import ray
    except ImportError:
        raise XmbenchError(RAY_MISSING) from None
    return ray


def forwarded_environ() -> dict[str, str]:
    """The driver's settings that the runs need as they are here (offline mode, caches, faults)."""
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED)}


@dataclasses.dataclass
class _Flight:
    job: Job
    submitted: float
    started: float | None = None
    where: str = ""

    @property
    def deadline(self) -> float:
        return (self.started or self.submitted) + self.job.timeout_s


class RayExecutor:
    def __init__(self, address: str | None = None, workers: int | None = None):
        if workers is not None and workers < 1:
            raise XmbenchError(f"--workers must be at least 1, not {workers}")
        self.ray = import_ray()
        self.address, self.workers = address, workers
        self.started_cluster = False  # this executor started the local Ray instance (and close() stops it)

    # --- the cluster -------------------------------------------------------------------------------

    def connect(self) -> None:
        """Start a local Ray instance (no address) or join the cluster at `address`; a no-op when connected."""
        ray = self.ray
        if ray.is_initialized():
            return
        common = dict(runtime_env={"env_vars": forwarded_environ()}, log_to_driver=False, logging_level=logging.WARNING)
        if self.address is None:
            ray.init(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False, **common)
            self.started_cluster = True
        else:
            try:
                ray.init(address=self.address, **common)
            except ConnectionError as exc:
                raise XmbenchError(f"--address {self.address}: no Ray cluster there: {exc}") from None

    def close(self) -> None:
        """Stop the local Ray instance this executor started (a cluster it joined is left running)."""
        if self.started_cluster and self.ray.is_initialized():
            self.ray.shutdown()
        self.started_cluster = False

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def plan(self) -> tuple[dict, int]:
        """The resources of one task, and how many tasks may be in flight at once."""
        nodes = [node["Resources"] for node in self.ray.nodes() if node.get("Alive")]
        cpus = [int(n.get("CPU", 0)) for n in nodes]
        gpus = [int(n.get("GPU", 0)) for n in nodes]
        if sum(gpus):
            share = max(1, min(c // g for c, g in zip(cpus, gpus) if g))
            options, capacity = {"num_gpus": 1, "num_cpus": share}, sum(min(g, c // share) for c, g in zip(cpus, gpus))
            unit = "GPU"
        else:
            usable = [c for c in cpus if c >= 1]
            if not usable:
                raise XmbenchError("the Ray cluster has no CPUs (or GPUs) to run on")
            share = max(1, min(sum(usable) // self.workers, max(usable))) if self.workers else min(usable)
            options, capacity = {"num_cpus": share}, sum(c // share for c in usable)
            unit = f"{share}-CPU slot"
        capacity = max(1, capacity)
        if self.workers and self.workers > capacity:
            _say(f"--workers {self.workers}, but the Ray cluster has room for {capacity} task(s) of one {unit} each: "
                 f"running {capacity} at a time")
        return options, min(self.workers or capacity, capacity)

    # --- the jobs --------------------------------------------------------------------------------

    def execute(self, jobs: list[Job], started=lambda job: None) -> Iterator[tuple[Job, Record, float]]:
        if not jobs:
            return
        ray = self.ray
        self.connect()
        options, at_once = self.plan()
        task = ray.remote(max_calls=1, max_retries=0, num_returns="streaming")(_task).options(**options)
        waiting, flights = deque(jobs), {}
        try:
            while waiting or flights:
                while waiting and len(flights) < at_once:
                    job = waiting.popleft()
                    started(job)
                    generator = task.remote(freeze(job), os.getcwd(), {**forwarded_environ(), **job.environ})
                    flights[generator] = _Flight(job, time.monotonic())
                timeout = max(0.0, min(f.deadline for f in flights.values()) - time.monotonic())
                ready, _ = ray.wait(list(flights), num_returns=1, timeout=timeout)
                for generator in ready:
                    flight = flights[generator]
                    kind, value = self._next(generator)
                    if kind == "started":
                        flight.started, flight.where = time.monotonic(), value
                        continue
                    del flights[generator]
                    record = self._written(flight.job, value) if kind == "record" else flight.job.fail(value)
                    yield flight.job, record, time.monotonic() - (flight.started or flight.submitted)
                now = time.monotonic()
                for generator, flight in list(flights.items()):
                    if flight.deadline <= now:
                        ray.cancel(generator, force=True)  # kills the worker process
                        del flights[generator]
                        timeout_s = flight.job.timeout_s
                        record = flight.job.fail(
                            f"Timeout: exceeded {timeout_s:.0f} s and was killed (Ray worker {flight.where})" if flight.started
                            else f"Timeout: did not start on the Ray cluster within {timeout_s:.0f} s (no free resources?) "
                                 f"and was cancelled")
                        yield flight.job, record, now - (flight.started or flight.submitted)
        finally:
            for generator in flights:  # interrupted: stop what still runs; those runs leave no record
                ray.cancel(generator, force=True)

    @staticmethod
    def _written(job: Job, fields: dict) -> Record:
        try:
            record = Record(**fields)
        except TypeError as exc:  # a worker with another version of xmbench
            return job.fail(f"Crash: the Ray worker returned a record this xmbench cannot read: {exc}")
        write_record(record, job.records_dir)
        return record

    def _next(self, generator) -> tuple[str, object]:
        """The task's next report: ("started", where), ("record", the record as a dict), or ("failed", why)."""
        ray = self.ray
        try:
            kind, value = ray.get(next(generator))
        except StopIteration:
            return "failed", "Crash: the Ray task ended without returning a record"
        except ray.exceptions.TaskCancelledError as exc:
            return "failed", f"Crash: the Ray task was cancelled: {_first_line(exc) or 'by someone else'}"
        except ray.exceptions.RayTaskError as exc:  # raised outside the run itself (unpickling the job, …)
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            return "failed", f"Crash: the Ray task failed: {type(cause).__name__}: {_first_line(cause)}"
        except ray.exceptions.RayError as exc:  # WorkerCrashedError, OutOfMemoryError, NodeDiedError, …
            return "failed", f"Crash: the Ray worker running it died: {type(exc).__name__}: {_first_line(exc)}"
        return kind, value


def _task(frozen: bytes, cwd: str, environ: dict[str, str]):
    """Runs on a Ray worker (a generator task): reports in, then runs the job and yields its record."""
    yield "started", f"pid {os.getpid()} on {socket.gethostname()}"
    os.environ.update(environ)
    import ray

    threads = str(max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1))))
    os.environ.update({"XMBENCH_THREADS": threads, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads})
    if os.path.isdir(cwd):  # a node that shares the driver's filesystem: user models are imported from there
        os.chdir(cwd)
        if cwd not in sys.path:
            sys.path.insert(0, cwd)
    import torch

    torch.set_num_threads(int(threads))
    job = thaw(frozen)
    with tempfile.TemporaryDirectory(prefix="xmbench-ray-") as scratch:  # the driver writes the real record
        record = dataclasses.replace(job, records_dir=Path(scratch)).run_here(progress=False)
    yield "record", dataclasses.asdict(record)


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else ""


def _say(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"xmbench: {message}", file=sys.stderr)
