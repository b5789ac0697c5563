"""Registered learning-rate schedules: multipliers of the base rate at a step."""
from __future__ import annotations

import math

from xmbench.registry import SCHEDULES


@SCHEDULES.register("cosine")
def warmup_cosine(step: int, total: int, warmup: int, options=None) -> float:
    """Linear warmup to 1, then cosine decay to 0 at the last step."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


@SCHEDULES.register("constant")
def warmup_constant(step: int, total: int, warmup: int, options=None) -> float:
    """Linear warmup to 1, then constant."""
    return (step + 1) / warmup if step < warmup else 1.0
