"""Measurement: raw samples with their unit, and the statistics every report shows."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Measurement:
    """Raw samples of one timed quantity; statistics are derived, never stored alone."""

    unit: str  # e.g. "s"
    samples: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.samples, q))

    def summary(self) -> dict[str, float | int | str]:
        values = self.samples
        return {
            "unit": self.unit, "n": len(values), "mean": statistics.fmean(values),
            "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
            "p50": self.percentile(50), "p90": self.percentile(90), "p99": self.percentile(99),
            "min": min(values), "max": max(values),
        }

    def to_dict(self) -> dict:
        return {"unit": self.unit, "samples": list(self.samples), **self.summary()}
