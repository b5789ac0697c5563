"""Training dynamics: gradient norms per component, and a diagnosis of the learning curves.

Gradient norms are taken after backward and before clipping, per component (each tower's
trainable weights — its adapters under PEFT —, each head, the temperature). A component's
share is its squared norm over the total squared norm (norms add in squares), so the shares
of a step sum to 1.

Diagnosis rules (each returns a Finding with its evidence; thresholds are module constants):
- unstable/non-finite: a NaN or infinite loss at any step.
- unstable/spikes: a step loss above SPIKE_FACTOR × the median of the SPIKE_WINDOW steps
  before it (after the first SPIKE_WINDOW steps, so warm-up does not count).
- underfitting/flat: the mean train loss of the last quarter of the steps is above
  FLAT_RATIO × that of the first quarter: the loss barely fell.
- underfitting/still-improving: mean validation R@1 rose by more than
  IMPROVING_GAIN (relative) between the last two validation points: more steps would pay.
- overfitting: the validation loss at the last point is above OVERFIT_RATIO × its best
  earlier value while the train loss at the last point is below its value at that best point.
No finding means "healthy" under these rules.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass

import torch

from xmbench.models import capabilities
from xmbench.train.hooks import Callback

SPIKE_FACTOR = 2.0
SPIKE_WINDOW = 10
FLAT_RATIO = 0.9
IMPROVING_GAIN = 0.10
OVERFIT_RATIO = 1.05


class GradNormProbe(Callback):
    """Per-step L2 norm of each component's gradients."""

    def __init__(self):
        self.groups: dict[str, list[torch.nn.Parameter]] = {}
        self.rows: list[dict[str, float]] = []

    def on_train_start(self, state) -> None:
        self.groups = {}
        for name, parameter in capabilities.named_parameters(state.model):
            if parameter.requires_grad:
                self.groups.setdefault(capabilities.component_of(state.model, name), []).append(parameter)

    @torch.no_grad()
    def after_backward(self, state) -> None:
        row = {"step": state.step}
        for component, parameters in self.groups.items():
            grads = [p.grad for p in parameters if p.grad is not None]
            row[component] = float(torch.linalg.vector_norm(torch.stack(
                [torch.linalg.vector_norm(g.float()) for g in grads]))) if grads else 0.0
        self.rows.append(row)

    def result(self) -> dict:
        return {"per_step": self.rows, "summary": summarize_grad_norms(self.rows)}


def summarize_grad_norms(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Median and max norm of each component, and its median share of the total squared norm."""
    components = [k for k in (rows[0] if rows else {}) if k != "step"]
    totals = [sum(r[c] ** 2 for c in components) for r in rows]
    summary = {}
    for c in components:
        norms = [r[c] for r in rows]
        shares = [r[c] ** 2 / t if t > 0 else 0.0 for r, t in zip(rows, totals)]
        summary[c] = {"median": statistics.median(norms), "max": max(norms), "share": statistics.median(shares)}
    return summary


@dataclass
class Finding:
    rule: str  # e.g. "unstable/spikes"
    message: str
    steps: list[int]

    def to_dict(self) -> dict:
        return asdict(self)


def diagnose(step_losses: list[float], curve: list[dict]) -> list[Finding]:
    """Every rule of the module docstring over the per-step train losses and the validation curve."""
    findings = []
    for rule in (_non_finite, _spikes, _flat, _still_improving, _overfitting):
        finding = rule(step_losses, curve)
        if finding:
            findings.append(finding)
    return findings


def _non_finite(losses, curve) -> Finding | None:
    bad = [i for i, x in enumerate(losses) if not math.isfinite(x)]
    if bad:
        return Finding("unstable/non-finite", f"loss not finite at {len(bad)} step(s), first at step {bad[0]}", bad[:20])
    return None


def _spikes(losses, curve) -> Finding | None:
    spikes = []
    for i in range(SPIKE_WINDOW, len(losses)):
        window = [x for x in losses[i - SPIKE_WINDOW:i] if math.isfinite(x)]
        if window and math.isfinite(losses[i]) and losses[i] > SPIKE_FACTOR * statistics.median(window):
            spikes.append(i)
    if spikes:
        return Finding("unstable/spikes", f"{len(spikes)} step loss(es) above {SPIKE_FACTOR}× the median of the "
                       f"previous {SPIKE_WINDOW} steps", spikes[:20])
    return None


def _flat(losses, curve) -> Finding | None:
    finite = [x for x in losses if math.isfinite(x)]
    quarter = len(finite) // 4
    if quarter < 2:
        return None
    first, last = statistics.fmean(finite[:quarter]), statistics.fmean(finite[-quarter:])
    if last > FLAT_RATIO * first:
        return Finding("underfitting/flat", f"train loss fell only from {first:.3f} to {last:.3f} "
                       f"(last quarter above {FLAT_RATIO}× the first)", [])
    return None


def _mean_r1(point: dict) -> float:
    values = list(point.get("val_r1", {}).values())
    return statistics.fmean(values) if values else 0.0


def _still_improving(losses, curve) -> Finding | None:
    if len(curve) < 2:
        return None
    before, last = _mean_r1(curve[-2]), _mean_r1(curve[-1])
    if before > 0 and (last - before) / before > IMPROVING_GAIN:
        return Finding("underfitting/still-improving", f"mean val R@1 rose {100 * (last / before - 1):.0f}% over the "
                       f"last interval ({before:.3f} → {last:.3f}): more steps would likely pay",
                       [curve[-2]["step"], curve[-1]["step"]])
    return None


def _overfitting(losses, curve) -> Finding | None:
    if len(curve) < 2:
        return None
    best = min(range(len(curve) - 1), key=lambda i: curve[i]["val_loss"])
    last = curve[-1]
    if last["val_loss"] > OVERFIT_RATIO * curve[best]["val_loss"] and last["train_loss"] < curve[best]["train_loss"]:
        return Finding("overfitting", f"val loss rose from {curve[best]['val_loss']:.3f} (step {curve[best]['step']}) to "
                       f"{last['val_loss']:.3f} while train loss fell to {last['train_loss']:.3f}",
                       [curve[best]["step"], last["step"]])
    return None
