"""The body of one isolated run: executed in a child process forked from a preloaded server.

The runner hands over the job (the variant with its resolved config, seed, output folders, the XMBENCH_* settings
and working folder of the moment; the job as bytes, read once the working folder is on sys.path, so that
plugins import from it) and waits; this process runs the variant and writes its record atomically.
A crash, an out-of-memory kill or a timeout leaves no record from here, and the runner records
the failure instead.
"""
from __future__ import annotations

import os
import sys
import threading
import time


def exit_with(pid: int, interval_s: float = 0.5) -> None:
    """End this process when `pid` (the suite's runner) is gone, so a killed suite leaves no orphans.

    The runner is not this process's parent (the fork server is), so the parent-death signal of
    Linux would not fire; a daemon thread that checks the runner's pid works everywhere.
    """

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(1)  # no record: the rerun will redo this variant
            except PermissionError:
                pass  # the pid exists, owned by someone else: still alive

    threading.Thread(target=watch, daemon=True, name="xmbench-runner-watch").start()


def run_job(spec: dict) -> None:
    exit_with(spec["runner_pid"])
    os.environ.update(spec["environ"])
    os.chdir(spec["cwd"])
    if spec["cwd"] not in sys.path:  # user models and plugins named by import path live in the working folder
        sys.path.insert(0, spec["cwd"])
    threads = os.environ.get("XMBENCH_THREADS")
    if threads:  # an executor's share of the CPU for this run
        import torch

        torch.set_num_threads(int(threads))
    from xmbench.bench.jobs import thaw

    thaw(spec["job"]).run_here(progress=False)
