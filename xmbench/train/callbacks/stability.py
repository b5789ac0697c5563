"""A numerical-stability monitor: non-finite gradients per component, the fp16 loss scale, overflow steps, activations.

At every step, in `state.notes`:
- `stability/nonfinite_grads`: {component: non-finite gradient values} after the backward pass
  (`after_backward`: with fp16 the engine has unscaled them; before clipping), by
  `capabilities.component_of` of each parameter (the loss's own parameters: "loss");
- `stability/overflow`: whether any gradient value is non-finite at this step (with a gradient
  scaler the scaler skips the optimizer step; without one the step would spread them into the
  parameters — `drop_nonfinite` drops those gradients so that the optimizer leaves their parameters as they are);
- `stability/loss_scale`: the gradient scaler's scale at this step (None without a scaler: fp32,
  bf16) and `stability/skipped`: whether the scaler backed off at this step's update (it found
  inf/NaN and skipped the step; None without a scaler);
- `stability/max_activation` and `stability/nonfinite_activations`: {component: the largest
  finite |value| / the count of non-finite values} of each component's outputs (forward hooks on
  `capabilities.components(model)`: tower/<m>, head/<m>) over the step's forward passes with
  gradients (validation and mining encode without gradients and are not counted);
- `stability/overflow_steps`: how many steps overflowed so far.

`summary()` (also in `state.notes["stability/summary"]` when training ends): the overflow
and skipped steps, the loss scale at each change, each component's largest activation and total
non-finite gradient and activation counts.

The loss scale is read from the engine's GradScaler, `state.scaler` (None without fp16).
"""
from __future__ import annotations

from dataclasses import dataclass

from xmbench.lazy import torch
from xmbench.registry import CALLBACKS
from xmbench.train.hooks import Callback

KEY = "stability"


@dataclass(frozen=True)
class StabilityOptions:
    """Attributes:
    activations: record each component's largest |activation| (forward hooks on every tower and head).
    drop_nonfinite: drop the gradients of parameters with non-finite values, so the optimizer leaves them unchanged.
    """

    activations: bool = True
    drop_nonfinite: bool = False


def tensors_of(output):
    """The tensors of a module's output (a tensor, or tuples, lists, dicts and model outputs of them)."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict) or hasattr(output, "values") and callable(output.values):
        return [t for v in output.values() for t in tensors_of(v)]
    if isinstance(output, (list, tuple)):
        return [t for v in output for t in tensors_of(v)]
    return []


class Stability(Callback):
    def __init__(self, options: StabilityOptions):
        self.options = options
        self.scaler = None
        self.handles = []
        self.activations: dict[str, list] = {}  # component → [(max finite |x|, non-finite count) tensors] of this step
        self.scale: float | None = None
        self.history: list[dict] = []  # per step: step, overflow, skipped, scale, counts, activations

    # -- wiring --------------------------------------------------------------------------------
    def on_train_start(self, state) -> None:
        from xmbench.models import capabilities

        self.scaler = state.scaler
        self.history = []
        if self.options.activations:
            for component, module in capabilities.components(state.model).items():
                self.handles.append(module.register_forward_hook(self._hook(component)))

    def _hook(self, component: str):
        def record(module, inputs, output) -> None:
            if not torch.is_grad_enabled():
                return
            for tensor in tensors_of(output):
                if not tensor.is_floating_point() or tensor.numel() == 0:
                    continue
                values = tensor.detach().abs()
                finite = torch.isfinite(values)
                largest = torch.where(finite, values, torch.zeros_like(values)).amax().float()
                self.activations.setdefault(component, []).append((largest, (~finite).sum()))

        return record

    def on_train_end(self, state) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []
        state.notes[f"{KEY}/summary"] = self.summary()

    # -- every step ----------------------------------------------------------------------------
    def on_step_start(self, state) -> None:
        self.activations = {}

    def named_parameters(self, state):
        from xmbench.models import capabilities

        named = [(capabilities.component_of(state.model, n), p) for n, p in capabilities.named_parameters(state.model)]
        loss_parameters = getattr(state.step_fn, "loss_parameters", None) or {}
        return named + [("loss", p) for p in loss_parameters.values()]

    def after_backward(self, state) -> None:
        with_grad = [(c, p) for c, p in self.named_parameters(state) if p.grad is not None]
        counts: dict[str, int] = {}
        if with_grad:
            bad = torch.stack([(~torch.isfinite(p.grad)).sum().to(with_grad[0][1].grad.device)
                               for _, p in with_grad]).tolist()  # one host read
            for (component, parameter), n in zip(with_grad, bad):
                counts[component] = counts.get(component, 0) + int(n)
                if n and self.options.drop_nonfinite:
                    parameter.grad = None
        overflow = any(counts.values())
        self.scale = self.scaler.get_scale() if self.scaler is not None and self.scaler.is_enabled() else None
        activations = self._activations()
        self.history.append({"step": state.step, "overflow": overflow, "skipped": None, "scale": self.scale,
                             "nonfinite_grads": counts, **activations})
        state.notes.update({f"{KEY}/nonfinite_grads": counts, f"{KEY}/overflow": overflow,
                            f"{KEY}/loss_scale": self.scale, f"{KEY}/skipped": None,
                            f"{KEY}/max_activation": activations["max_activation"],
                            f"{KEY}/nonfinite_activations": activations["nonfinite_activations"],
                            f"{KEY}/overflow_steps": sum(h["overflow"] for h in self.history)})

    def _activations(self) -> dict:
        largest, nonfinite = {}, {}
        for component, records in self.activations.items():
            device = records[0][0].device
            values = torch.stack([torch.stack([m.to(device), n.to(device).float()]) for m, n in records]).cpu()
            largest[component] = float(values[:, 0].max())
            nonfinite[component] = int(values[:, 1].sum())
        return {"max_activation": largest, "nonfinite_activations": nonfinite}

    def on_step_end(self, state, log) -> None:
        if not self.history or self.history[-1]["step"] != state.step or self.scale is None:
            return
        after = self.scaler.get_scale()
        skipped = after < self.scale  # the scaler backs off only when it found inf/NaN and skipped the step
        self.history[-1]["skipped"] = skipped
        state.notes[f"{KEY}/skipped"] = skipped

    # -- the run -------------------------------------------------------------------------------
    def summary(self) -> dict:
        """What the run went through: overflow and skipped steps, loss-scale changes, activation and gradient extremes."""
        scales, largest, grads, acts = [], {}, {}, {}
        for h in self.history:
            if h["scale"] is not None and (not scales or scales[-1][1] != h["scale"]):
                scales.append([h["step"], h["scale"]])
            for c, v in h["max_activation"].items():
                largest[c] = max(largest.get(c, 0.0), v)
            for c, n in h["nonfinite_grads"].items():
                grads[c] = grads.get(c, 0) + n
            for c, n in h["nonfinite_activations"].items():
                acts[c] = acts.get(c, 0) + n
        return {"steps": len(self.history), "overflow_steps": [h["step"] for h in self.history if h["overflow"]],
                "skipped_steps": [h["step"] for h in self.history if h["skipped"]], "loss_scale": scales,
                "max_activation": largest, "nonfinite_grads": grads, "nonfinite_activations": acts}


@CALLBACKS.register(KEY, StabilityOptions)
def stability(options: StabilityOptions):
    """Numerical-stability monitor: non-finite gradients per component, fp16 loss scale, overflow steps, max activations."""
    return Stability(options)
