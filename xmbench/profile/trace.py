"""torch.profiler traces of training and inference steps, and what they say.

The trace is written as Chrome trace-event JSON (open it in Perfetto or chrome://tracing).
The summary reads the profiler's events: the top operators by self time, the time of each
step phase (the engine's `phase/*` scopes), and the split by component — each tower's and
head's forward (`tower/*`, `projection/*` scopes) plus its backward: autograd runs a forward
op's backward node with the op's sequence number, so each `evaluate_function` event is charged
to the scope its forward op ran in. `coverage` is the sum of the phases over the step time:
what the scopes do not explain shows up there, it is not folded into a remainder.
"""
from __future__ import annotations

import json
import os
import statistics
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function, schedule

from xmbench.errors import XmbenchError
from xmbench.profile.phases import PHASES
from xmbench.train.hooks import Callback

# Kineto in a CUDA build logs "gpuGetDeviceCount failed" as an ERROR on a machine without a GPU:
# noise, not a problem; it reads this level when the first profiler starts.
os.environ.setdefault("KINETO_LOG_LEVEL", "5")

SCOPES = ("phase/", "tower/", "projection/", "inference/", "ProfilerStep")
BACKWARD_PREFIX = "autograd::engine::evaluate_function: "


class ProfilerStepper(Callback):
    """Advances the profiler's schedule at the end of each training step."""

    def __init__(self, profiler):
        self.profiler = profiler

    def phase_ended(self, name: str) -> None:
        if name == PHASES[-1]:
            self.profiler.step()


def activities() -> list:
    return [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])


def writable_directory(path: Path) -> Path:
    """Create `path`, or fail with an error that names it before any work is done."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".xmbench-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise XmbenchError(f"profile.trace_dir: cannot write traces to {path}: {exc.strerror or exc}") from None
    return path


def trace_training(run_steps, n_steps: int, out_path: Path) -> dict:
    """Profile `run_steps(probes)` — the engine running 1 + n_steps steps — after one warmup step."""
    plan = schedule(wait=0, warmup=1, active=n_steps, repeat=1)
    with profile(activities=activities(), schedule=plan, record_shapes=False) as profiler:
        run_steps([ProfilerStepper(profiler)])
    profiler.export_chrome_trace(str(out_path))
    return summarize_training(profiler.events(), n_steps)


def trace_inference(model, batches: dict[str, dict[str, torch.Tensor]], out_path: Path, repeats: int = 3) -> dict:
    """Profile encoding one batch of each modality `repeats` times (after a warmup)."""
    with torch.inference_mode():
        for modality, inputs in batches.items():
            model.encode(modality, inputs)
        with profile(activities=activities(), record_shapes=False) as profiler:
            for _ in range(repeats):
                for modality, inputs in batches.items():
                    with record_function(f"inference/{modality}"):
                        model.encode(modality, inputs)
    profiler.export_chrome_trace(str(out_path))
    events = profiler.events()
    per_modality = defaultdict(float)
    for event in events:
        if event.name.startswith("inference/"):
            per_modality[event.name.split("/", 1)[1]] += event.cpu_time_total / 1e6 / repeats
    return {"seconds_per_batch": dict(per_modality), "top_ops": top_operators(events, 10)}


def top_operators(events, n: int = 15) -> list[dict]:
    """Operators by self time (CPU, and CUDA when present), xmbench's own scopes left out."""
    totals: dict[str, dict] = {}
    for event in events:
        if event.name.startswith(SCOPES) or event.name.startswith(BACKWARD_PREFIX):
            continue
        entry = totals.setdefault(event.name, {"name": event.name, "calls": 0, "self_cpu_s": 0.0, "self_device_s": 0.0})
        entry["calls"] += 1
        entry["self_cpu_s"] += event.self_cpu_time_total / 1e6
        entry["self_device_s"] += getattr(event, "self_device_time_total", 0.0) / 1e6
    return sorted(totals.values(), key=lambda e: e["self_cpu_s"] + e["self_device_s"], reverse=True)[:n]


def _scope_of(event) -> str | None:
    """The innermost tower/projection scope an op ran in, or None."""
    parent = event
    while parent is not None:
        if parent.name.startswith(("tower/", "projection/")):
            return parent.name
        parent = parent.cpu_parent
    return None


def summarize_training(events, n_steps: int) -> dict:
    """Seconds per step: step time, phases, and the split by component (forward + backward)."""
    steps = [e.cpu_time_total / 1e6 for e in events if e.name.startswith("ProfilerStep")]
    phases = defaultdict(float)
    forward = defaultdict(float)
    owner_of_sequence: dict[int, str] = {}
    backward_events = []
    for event in events:
        name = event.name
        if name.startswith("phase/"):
            phases[name[6:]] += event.cpu_time_total / 1e6
        elif name.startswith(("tower/", "projection/")):
            forward[name] += event.cpu_time_total / 1e6
        elif name.startswith(BACKWARD_PREFIX):
            backward_events.append(event)
        elif event.sequence_nr >= 0 and event.sequence_nr not in owner_of_sequence:
            scope = _scope_of(event)
            if scope:
                owner_of_sequence[event.sequence_nr] = scope
    backward = defaultdict(float)
    for event in backward_events:
        backward[owner_of_sequence.get(event.sequence_nr, "loss")] += event.cpu_time_total / 1e6
    step_s = statistics.fmean(steps) if steps else sum(phases.values()) / max(n_steps, 1)
    per_step = {k: v / n_steps for k, v in phases.items()}
    components = {}
    for scope in sorted(set(forward) | set(backward)):
        components[scope] = {"forward_s": forward.get(scope, 0.0) / n_steps, "backward_s": backward.get(scope, 0.0) / n_steps}
    towers_fwd = sum(forward.values()) / n_steps
    components["loss"] = {"forward_s": per_step.get("forward", 0.0) - towers_fwd,
                          "backward_s": backward.get("loss", 0.0) / n_steps}
    components["data"] = {"forward_s": per_step.get("data", 0.0), "backward_s": 0.0}
    components["optimizer"] = {"forward_s": per_step.get("optimizer", 0.0), "backward_s": 0.0}
    attributed_backward = sum(c["backward_s"] for c in components.values())
    components["backward (other)"] = {"forward_s": 0.0, "backward_s": per_step.get("backward", 0.0) - attributed_backward}
    return {
        "step_s": step_s, "n_steps": n_steps, "phases_s": per_step,
        "coverage": sum(per_step.values()) / step_s if step_s else 0.0,
        "components_s": components,
        "top_ops": top_operators(events),
    }


def validate_chrome_trace(path: Path) -> int:
    """Parse a trace and check it is trace-event JSON; returns the number of complete events."""
    payload = json.loads(Path(path).read_text())
    events = payload["traceEvents"] if isinstance(payload, dict) else payload
    complete = [e for e in events if e.get("ph") == "X"]
    for event in complete:
        if not {"name", "ts", "dur", "pid", "tid"} <= event.keys():
            raise ValueError(f"{path}: event without name/ts/dur/pid/tid: {event}")
    return len(complete)
