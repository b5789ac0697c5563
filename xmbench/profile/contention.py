"""Other processes' share of the CPUs while a run ran: timings taken beside another job are not the run's.

    foreign share = (busy seconds of all CPUs − this process's CPU seconds) / (wall seconds × CPUs)

Busy time comes from /proc/stat (user, nice, system, irq, softirq and steal: a hypervisor's
other guests count too), this process's from `time.process_time` (all its threads). On this
project's 2-core machines a second torch job made both jobs' OpenMP threads spin against each
other: training steps measured 0.46 s alone and ~9 s beside a test run. The runner warns when a
run's share is high, and the record keeps it (`costs.foreign_cpu_share`), so a slow timing can be
told from a slow change. None where /proc/stat does not exist (not Linux).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

PROC_STAT = Path("/proc/stat")
BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user nice system (idle iowait) irq softirq steal
WARN_ABOVE = 0.2  # share of the machine's CPU time used by others that makes a run's timings suspect


@dataclass(frozen=True)
class CpuSnapshot:
    busy_s: float  # all CPUs, since boot
    own_s: float  # this process, since it started
    wall_s: float

    @classmethod
    def now(cls) -> CpuSnapshot | None:
        busy = machine_busy_seconds()
        return None if busy is None else cls(busy, time.process_time(), time.perf_counter())


def machine_busy_seconds(stat: Path = PROC_STAT) -> float | None:
    try:
        first = stat.read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    ticks = [int(first[1 + i]) for i in BUSY_FIELDS if 1 + i < len(first)]
    return sum(ticks) / os.sysconf("SC_CLK_TCK")


def foreign_share(start: CpuSnapshot | None, end: CpuSnapshot | None, cpus: int) -> float | None:
    """Share of the machine's CPU time between the snapshots that other processes used (0…1)."""
    if start is None or end is None or end.wall_s <= start.wall_s:
        return None
    others = (end.busy_s - start.busy_s) - (end.own_s - start.own_s)
    return min(1.0, max(0.0, others / ((end.wall_s - start.wall_s) * cpus)))


class ContentionMeter:
    """`with meter: ...` then `meter.share`: what others used of the CPUs meanwhile."""

    def __init__(self, cpus: int | None = None):
        self.cpus = cpus or os.cpu_count() or 1
        self.share: float | None = None
        self._start: CpuSnapshot | None = None

    def __enter__(self) -> ContentionMeter:
        self._start = CpuSnapshot.now()
        return self

    def __exit__(self, *exc) -> None:
        self.share = foreign_share(self._start, CpuSnapshot.now(), self.cpus)
