"""The body of one isolated run: executed in a child process forked from a preloaded server.

The runner hands over the job (resolved config, seed, output folders, the XMBENCH_* settings
and working folder of the moment) and waits; this process runs the variant and writes its
record atomically. A crash, an out-of-memory kill or a timeout leaves no record from here,
and the runner records the failure instead.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies, so a killed suite leaves no orphans."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the child may outlive a killed parent, and still writes atomically


def run_job(job: dict) -> None:
    die_with_parent()
    os.environ.update(job["environ"])
    os.chdir(job["cwd"])
    if job["cwd"] not in sys.path:  # user models named by import path live in the working folder
        sys.path.insert(0, job["cwd"])

    from xmbench.bench.env import capture
    from xmbench.bench.record import write_record
    from xmbench.bench.runner import run_variant
    from xmbench.config import RunConfig, from_dict
    from xmbench.suite import Variant

    variant = Variant(job["variant"], from_dict(RunConfig, job["config"]), job["overrides"])
    record = run_variant(job["suite"], variant, job["seed"], Path(job["artifacts"]), progress=job["progress"])
    record.env = capture()
    write_record(record, Path(job["records"]))
