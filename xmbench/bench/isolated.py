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
from pathlib import Path

from xmbench.bench.record import Record, read_record, slug, write_record

PRELOAD = ["torch", "transformers", "peft", "xmbench.bench.runner"]
_context = None


def _fork_server():
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


def run(suite: str, variant, seed: int, records_dir: Path, artifacts_dir: Path, timeout_s: float) -> Record:
    """Run the variant in a child process; return its record, or a failed one explaining why."""
    from xmbench.bench.worker import run_job

    path = Path(records_dir) / suite / f"{slug(variant.name)}__seed{seed}.json"
    before = path.stat().st_mtime_ns if path.exists() else None
    job = {"suite": suite, "variant": variant, "seed": seed, "records": str(Path(records_dir).resolve()),
           "artifacts": str(Path(artifacts_dir).resolve()), "progress": False, "cwd": os.getcwd(), "runner_pid": os.getpid(),
           "environ": {k: v for k, v in os.environ.items() if k.startswith(("XMBENCH_", "HF_", "OMP_", "MKL_"))}}
    child = _fork_server().Process(target=run_job, args=(job,), name=f"xmbench {variant.name} seed {seed}")
    child.start()
    try:
        child.join(timeout_s)
    except BaseException:  # Ctrl-C: stop the child too; its record is whole or absent
        child.kill()
        child.join()
        raise
    if child.is_alive():
        child.kill()
        child.join()
        return _failed(suite, variant, seed, records_dir, f"Timeout: exceeded {timeout_s:.0f} s and was killed")
    if path.exists() and path.stat().st_mtime_ns != before:
        return read_record(path)
    return _failed(suite, variant, seed, records_dir, _why(child.exitcode))


def _why(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        hint = " (the kernel's out-of-memory killer sends SIGKILL)" if -code == signal.SIGKILL else ""
        return f"Crash: the run's process was killed by {name}{hint}"
    return f"Crash: the run's process exited with code {code} without writing a record"


def _failed(suite: str, variant, seed: int, records_dir: Path, error: str) -> Record:
    record = Record(suite=suite, variant=variant.name, variant_id=variant.variant_id, seed=seed, status="failed",
                    config=variant.record_config(), overrides=variant.overrides, error=error)
    write_record(record, records_dir)
    return record
