"""Running one variant × seed in a child process with a timeout.

Children are forked from a multiprocessing fork server that imported torch, transformers and
peft once (about 9 s a process on a 2-core CPU), so isolation costs milliseconds per run. The
fork server never computes, so forking it is safe for OpenMP and CUDA alike.

The child (xmbench.bench.worker) writes its own record, and ends itself if the runner dies. When it does not — it crashed, was
killed for memory, or ran past the timeout — this module writes a failed record saying so.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import threading

from xmbench.bench.record import Record, read_record

PRELOAD = ["torch", "transformers", "peft", "xmbench.bench.runner"]
_context = None
_starting = threading.Lock()


def _fork_server():
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


def start_early() -> None:
    """Start the fork server now: it imports its ~9 s of modules on one core while the caller's preflight
    builds the suite's models on the other, instead of after it. Runs then fork from it as before."""
    from multiprocessing import forkserver

    _fork_server()
    forkserver.ensure_running()


def run(job) -> Record:
    """Run the job in a child process; return its record, or a failed one explaining why."""
    from xmbench.bench.jobs import freeze
    from xmbench.bench.worker import run_job

    path = job.record_path
    before = path.stat().st_mtime_ns if path.exists() else None
    spec = {"job": freeze(job), "cwd": os.getcwd(), "runner_pid": os.getpid(),
            "environ": {**{k: v for k, v in os.environ.items() if k.startswith(("XMBENCH_", "HF_", "OMP_", "MKL_"))},
                        **job.environ}}
    child = _fork_server().Process(target=run_job, args=(spec,), name=f"xmbench {job.variant.name} seed {job.seed}")
    with _starting:  # several pool threads may start children at once
        child.start()
    try:
        child.join(job.timeout_s)
    except BaseException:  # Ctrl-C: stop the child too; its record is whole or absent
        child.kill()
        child.join()
        raise
    if child.is_alive():
        child.kill()
        child.join()
        return job.fail(f"Timeout: exceeded {job.timeout_s:.0f} s and was killed")
    if path.exists() and path.stat().st_mtime_ns != before:
        return read_record(path)
    return job.fail(_why(child.exitcode))


def _why(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        hint = " (the kernel's out-of-memory killer sends SIGKILL)" if -code == signal.SIGKILL else ""
        return f"Crash: the run's process was killed by {name}{hint}"
    return f"Crash: the run's process exited with code {code} without writing a record"
