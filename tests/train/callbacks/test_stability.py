"""The stability monitor flags an injected overflow: non-finite gradients per component, the fp16 loss scale
backing off, the skipped step; max |activation| per component; a guard that drops non-finite gradients."""
import math

import torch

from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.models.reference import build_reference
from xmbench.registry import CALLBACKS
from xmbench.train.engine import train
from xmbench.train.hooks import Callback

KEY = "stability"
COMPONENTS = {f"{kind}/{m}" for kind in ("tower", "head") for m in ("text", "image", "audio")}


def first_parameter(model, prefix):
    return next(p for n, p in model.named_parameters() if n.startswith(prefix) and p.requires_grad)


class Snapshots(Callback):
    """Listed last: a copy of a parameter at every step's end."""

    def __init__(self, parameter):
        self.parameter, self.values = parameter, []

    def on_step_end(self, state, log):
        self.values.append(self.parameter.detach().clone())


def run(tiny_base, overrides, inject, steps=4):
    config = resolve(tiny_base, {"train": {"steps": steps, "eval_every": 0, **overrides}})
    split = load_split(config.data, "train")
    torch.manual_seed(0)
    model = build_reference(config, split.modalities)
    parameter = first_parameter(model, "heads.image")
    snapshots = Snapshots(parameter)
    built = [inject(parameter)] + [CALLBACKS.bind(c)() for c in config.train.callbacks] + [snapshots]
    result = train(model, split, config.train, seed=0, pairs=config.train.modality_pairs(split.modalities),
                   progress=False, callbacks=built)
    return result, built[1], snapshots.values


def test_an_fp16_overflow_is_flagged_skipped_and_the_loss_scale_halves(tiny_base):
    class Overflow(Callback):
        """At step 2 a gradient of the image head becomes infinite inside the backward pass, as fp16 overflows do."""

        def __init__(self, parameter):
            self.parameter, self.handle = parameter, None

        def on_step_start(self, state):
            if state.step == 2:
                self.handle = self.parameter.register_hook(lambda grad: grad * float("inf"))

        def on_step_end(self, state, log):
            if self.handle:
                self.handle.remove()
                self.handle = None

    precision = {"name": "autocast", "dtype": "fp16", "components": ["head/*"]}
    result, monitor, values = run(tiny_base, {"precision": precision, "callbacks": [KEY]}, Overflow)
    notes = [s.notes for s in result.steps]
    assert [n[f"{KEY}/overflow"] for n in notes] == [False, False, True, False]
    assert [n[f"{KEY}/skipped"] for n in notes] == [False, False, True, False]
    assert [n[f"{KEY}/loss_scale"] for n in notes] == [65536.0, 65536.0, 65536.0, 32768.0]  # backoff 0.5
    bad = notes[2][f"{KEY}/nonfinite_grads"]
    assert bad["head/image"] == first_parameter_numel(values) and all(bad[c] == 0 for c in bad if c != "head/image")
    assert all(not any(n[f"{KEY}/nonfinite_grads"].values()) for i, n in enumerate(notes) if i != 2)
    assert [n[f"{KEY}/overflow_steps"] for n in notes] == [0, 0, 1, 1]
    assert torch.equal(values[1], values[2]) and not torch.equal(values[2], values[3])  # the scaler skipped step 2 only
    assert all(math.isfinite(s.loss) for s in result.steps)
    for n in notes:  # every tower and head computed, finite and non-zero
        assert set(n[f"{KEY}/max_activation"]) == COMPONENTS
        assert all(0 < v < math.inf for v in n[f"{KEY}/max_activation"].values())
        assert not any(n[f"{KEY}/nonfinite_activations"].values())
    summary = monitor.summary()
    assert summary["overflow_steps"] == [2] and summary["skipped_steps"] == [2] and summary["steps"] == 4
    assert summary["loss_scale"] == [[0, 65536.0], [3, 32768.0]]
    assert summary["nonfinite_grads"]["head/image"] == bad["head/image"]
    assert summary["max_activation"] == {c: max(n[f"{KEY}/max_activation"][c] for n in notes) for c in COMPONENTS}
    assert monitor.handles == []  # the hooks are removed at the end


def first_parameter_numel(values):
    return values[0].numel()


def test_without_a_scaler_the_guard_drops_the_poisoned_gradient(tiny_base):
    class Poison(Callback):
        """Listed before the monitor: after the backward pass of step 1, a gradient of the image head becomes inf."""

        def __init__(self, parameter):
            self.parameter = parameter

        def after_backward(self, state):
            if state.step == 1:
                self.parameter.grad[0] = float("inf")

    result, monitor, values = run(tiny_base, {"callbacks": [{"name": KEY, "drop_nonfinite": True,
                                                             "activations": False}], "steps": 3}, Poison, steps=3)
    notes = [s.notes for s in result.steps]
    assert [n[f"{KEY}/overflow"] for n in notes] == [False, True, False]
    assert notes[1][f"{KEY}/nonfinite_grads"]["head/image"] == values[0].shape[1]  # one row of the weight
    assert all(n[f"{KEY}/loss_scale"] is None and n[f"{KEY}/skipped"] is None for n in notes)  # fp32: no scaler
    assert notes[0][f"{KEY}/max_activation"] == {}
    assert torch.equal(values[0], values[1]) and torch.isfinite(values[2]).all()  # dropped, then trained on
    assert all(math.isfinite(s.loss) for s in result.steps)
    assert monitor.summary()["overflow_steps"] == [1]
