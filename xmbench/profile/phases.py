"""The phases of a training step, each a profiler scope whose start and end callbacks are told of.

The engine wraps its step in `phases("data")`, `phases("forward")`, `phases("backward")` and
`phases("optimizer")`. Without probes a phase is only a `record_function` scope (a few
microseconds, and nothing at all unless a profiler is recording); probes are callbacks
(xmbench.train.hooks.Callback) that override `phase_started` / `phase_ended`.
"""
from __future__ import annotations

from contextlib import contextmanager

from torch.profiler import record_function

PHASES = ("data", "forward", "backward", "optimizer")


class Phases:
    """`with phases("forward"): ...` — a profiler scope, and the callbacks told when it starts and ends."""

    def __init__(self, callbacks):
        self.callbacks = callbacks

    @contextmanager
    def __call__(self, name: str):
        self.callbacks.phase_started(name)
        with record_function(f"phase/{name}"):
            yield
        self.callbacks.phase_ended(name)
