"""Loading throughput: how long the engine's data phase takes, and what share of a step it is.

The data phase assembles a step's batch from the preprocessed split (one caption drawn per item,
text padding trimmed), copies it to the device and applies the configured augmentations. A
loading cost near the step time says the accelerator waits for data: more augmentation work than
compute, or a slow copy. Two clock reads per step; measured in every run.
"""
from __future__ import annotations

import statistics
import time

from xmbench.train.hooks import Callback


class LoadingProbe(Callback):
    """Seconds of the data phase at every step."""

    def __init__(self):
        self.seconds: list[float] = []
        self._started = 0.0

    def phase_started(self, name: str) -> None:
        if name == "data":
            self._started = time.perf_counter()

    def phase_ended(self, name: str) -> None:
        if name == "data":
            self.seconds.append(time.perf_counter() - self._started)

    def result(self, steps) -> dict:
        """Median data seconds per step, its share of the step, and items loaded per second (from the step log)."""
        if not self.seconds or not steps:
            return {}
        paired = list(zip(self.seconds, steps[-len(self.seconds):]))  # a resumed run measured only its last steps
        items = [step.samples_per_s * step.seconds for _, step in paired]
        return {"data_s_per_step": statistics.median(self.seconds),
                "share_of_step": statistics.median(data / step.seconds for data, step in paired if step.seconds > 0),
                "items_per_s": statistics.median(n / data for n, (data, _) in zip(items, paired) if data > 0)}
