"""The phases of a training step, each a profiler scope, and the hooks probes attach to.

The engine wraps its step in `phases("data")`, `phases("forward")`, `phases("backward")` and
`phases("optimizer")`. Without probes a phase is only a `record_function` scope (a few
microseconds, and nothing at all unless a profiler is recording); probes subclass StepProbe
and override the hooks they need.
"""
from __future__ import annotations

from contextlib import contextmanager

from torch.profiler import record_function

PHASES = ("data", "forward", "backward", "optimizer")


class StepProbe:
    """Hooks called by the engine; every one is a no-op here."""

    def attach(self, model, optimizer) -> None:
        """Training starts."""

    def detach(self) -> None:
        """Training ended (also after an error)."""

    def phase_started(self, name: str) -> None:
        pass

    def phase_ended(self, name: str) -> None:
        pass

    def after_backward(self, model, step: int) -> None:
        """Gradients of this step are complete and not yet clipped."""


class Phases:
    """`with phases("forward"): ...` — a profiler scope, and the probes told when it starts and ends."""

    def __init__(self, probes=()):
        self.probes = list(probes)

    @contextmanager
    def __call__(self, name: str):
        for probe in self.probes:
            probe.phase_started(name)
        with record_function(f"phase/{name}"):
            yield
        for probe in self.probes:
            probe.phase_ended(name)

    def after_backward(self, model, step: int) -> None:
        for probe in self.probes:
            probe.after_backward(model, step)

    @contextmanager
    def attached(self, model, optimizer):
        for probe in self.probes:
            probe.attach(model, optimizer)
        try:
            yield
        finally:
            for probe in self.probes:
                probe.detach()


def component_of(parameter_name: str) -> str:
    """The component a parameter belongs to: tower/<modality>, head/<modality>, temperature.

    Other models' parameters are grouped by the first part of their name.
    """
    parts = parameter_name.split(".")
    if parts[0] in ("towers", "heads") and len(parts) > 1:
        return f"{parts[0][:-1]}/{parts[1]}"
    if parts[0] == "log_logit_scale":
        return "temperature"
    return parts[0]
