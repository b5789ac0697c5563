"""Peak memory of a block of work: process RSS sampled on CPU, the allocator's peak on GPU."""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager

import torch

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return 0


class PeakMemory:
    """`with probe.track(): ...` then `probe.result()`: peak RSS (and CUDA peak) in MiB.

    RSS is sampled by a background thread every `interval_s`; short spikes between samples
    can be missed, so the sampling interval is recorded with the result.
    """

    def __init__(self, interval_s: float = 0.02):
        self.interval_s = interval_s
        self.peak_rss, self.start_rss, self.cuda_peak = 0, 0, None

    @contextmanager
    def track(self):
        self.start_rss = self.peak_rss = rss_bytes()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(self.interval_s):
                self.peak_rss = max(self.peak_rss, rss_bytes())

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()
            self.peak_rss = max(self.peak_rss, rss_bytes())
            if torch.cuda.is_available():
                self.cuda_peak = torch.cuda.max_memory_allocated()

    def result(self) -> dict[str, float | None]:
        mib = 2**20
        return {
            "peak_rss_mb": self.peak_rss / mib,
            "rss_growth_mb": (self.peak_rss - self.start_rss) / mib,
            "cuda_peak_mb": None if self.cuda_peak is None else self.cuda_peak / mib,
            "rss_sample_interval_s": self.interval_s,
        }
