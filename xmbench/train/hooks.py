"""Callbacks: what may watch and steer training at every step, and the state they steer through.

A callback (a registered technique in xmbench/train/callbacks/, or a profile probe) overrides
the hooks it needs. Through the `TrainState` it may change, at any step: the pair weights and
which pairs train (modality masks, curricula), the batch size, and which parameters train
(unfreezing; the optimizer's groups gain the new parameters).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Callback:
    """Hooks the engine calls; every one is a no-op here."""

    def on_train_start(self, state: TrainState) -> None:
        """Training starts (after a resumed checkpoint is loaded)."""

    def on_step_start(self, state: TrainState) -> None:
        """Before the step's batch is drawn: the place to change batch size, pairs, weights, what trains."""

    def phase_started(self, name: str) -> None:
        """A step phase (data, forward, backward, optimizer) starts."""

    def phase_ended(self, name: str) -> None:
        pass

    def after_backward(self, state: TrainState) -> None:
        """Gradients of this step are complete and not yet clipped."""

    def on_step_end(self, state: TrainState, log) -> None:
        """The step is done; `log` is its StepLog."""

    def on_validation(self, state: TrainState, point) -> None:
        """A validation point (CurvePoint) of the learning curve was measured."""

    def on_train_end(self, state: TrainState) -> None:
        """Training ended, also after an error."""


@dataclass
class TrainState:
    """What callbacks see and may change; the engine reads the changes at the next step."""

    model: Any
    optimizer: Any
    step_fn: Any  # the TrainingStep: .pairs and .pair_weights may be changed
    sampler: Any  # .batch_size may be changed
    total_steps: int
    step: int = 0
    refresh_parameters: Callable[[], None] = field(default=lambda: None)
    notes: dict[str, Any] = field(default_factory=dict)  # what callbacks set to appear in this step's log
    seed: int = 0  # the run's seed: callbacks that draw at random mix it in
    # draw_batch(n) -> a Batch of n training items from a generator of its own (the sampler's stream is untouched)
    draw_batch: Callable[[int], Any] | None = None
    split: Any = None  # the training split (EncodedSplit): for callbacks that mine it with the current model
    scaler: Any = None  # the fp16 gradient scaler, when the precision policy uses one (its scale, its skipped steps)

    @property
    def progress(self) -> float:
        return self.step / max(self.total_steps, 1)

    def set_trainable(self, predicate: Callable[[str], bool], trainable: bool = True) -> int:
        """Switch `requires_grad` of the parameters whose name matches; the optimizer picks them up.

        Returns how many parameters changed.
        """
        from xmbench.models import capabilities

        changed = 0
        for name, parameter in capabilities.named_parameters(self.model):
            if predicate(name) and parameter.requires_grad != trainable:
                parameter.requires_grad_(trainable)
                changed += 1
        if changed:
            self.refresh_parameters()
        return changed


def _to_each(hook: str):
    def call(self, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(*args)

    call.__name__ = hook
    return call


class Callbacks(Callback):
    """Several callbacks called in order, as one."""

    def __init__(self, callbacks=()):
        self.callbacks = list(callbacks)

    on_train_start = _to_each("on_train_start")
    on_step_start = _to_each("on_step_start")
    phase_started = _to_each("phase_started")
    phase_ended = _to_each("phase_ended")
    after_backward = _to_each("after_backward")
    on_step_end = _to_each("on_step_end")
    on_validation = _to_each("on_validation")
    on_train_end = _to_each("on_train_end")
