"""Self-distillation from an exponential moving average of the student (mean teacher, Tarvainen & Valpola 2017).

The callback keeps an EMA copy of the model's trainable parameters: θ̄ ← θ at train start, then
after every optimizer step (at the step's end)

    θ̄ ← decay · θ̄ + (1 − decay) · θ

and sets `state.step_fn.teacher` to a function batch → {modality: embeddings} that encodes the
batch's modalities with θ̄ in place of θ, in eval mode and without gradients. The distillation
regularisers (`distill_logits`, `distill_features`) then read those embeddings as
`LossInput.teacher`. Parameters that start training later (unfreezing) join the average at the
value they have then; frozen parameters are the same in student and teacher and are not copied.

Memory: one extra copy of the trainable parameters only, not of the model. The teacher swaps
the EMA tensors into the live parameters by reference (`param.data = ema`, no copy), encodes,
and swaps the student's tensors back (also after an error). `.data` assignment is invisible to
autograd, and the swap-back happens before the student's backward, so the student's graph,
built before the teacher is called, is untouched. A deep copy of the model would double the
memory of frozen backbones for nothing (PEFT trains a few percent of them).

A variant with `train.teacher` (another variant teaching) cannot also take this callback: that
is an error at train start. At train end the step's teacher is unset again. The EMA state is
checkpointed (`state_dict`) so a resumed run continues the same average. In `state.notes`:
`ema_teacher/decay`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from xmbench.registry import CALLBACKS
from xmbench.schema import Range
from xmbench.train.hooks import Callback

KEY = "ema_teacher"


@dataclass(frozen=True)
class EmaTeacherOptions:
    """Attributes:
    decay: weight of the running average at each update: θ̄ ← decay·θ̄ + (1 − decay)·θ (0: the teacher is the student).
    """

    decay: Annotated[float, Range(0, 1)] = 0.999


class EmaTeacher(Callback):
    def __init__(self, options: EmaTeacherOptions):
        self.options = options
        self.model = None
        self.ema: dict = {}  # parameter name → its running average (a tensor of the parameter's dtype and device)
        self.installed = False

    # -- the average ------------------------------------------------------------------------
    def _trainable(self):
        from xmbench.models import capabilities

        return [(name, p) for name, p in capabilities.named_parameters(self.model) if p.requires_grad]

    def _join_new(self) -> None:
        """Parameters that train now but have no average yet start it at their current value."""
        for name, parameter in self._trainable():
            if name not in self.ema:
                self.ema[name] = parameter.detach().clone()

    def update(self) -> None:
        """θ̄ ← decay·θ̄ + (1 − decay)·θ for every tracked parameter (new ones join at their value)."""
        from xmbench.lazy import torch

        parameters = dict(self._trainable())
        with torch.no_grad():
            for name, average in self.ema.items():
                if name in parameters:
                    average.lerp_(parameters[name].detach().to(average.dtype), 1.0 - self.options.decay)
        self._join_new()

    # -- the teacher ------------------------------------------------------------------------
    def teacher(self, batch) -> dict:
        """The batch's modalities encoded with the averaged parameters (eval mode, no gradients)."""
        from xmbench.lazy import torch
        from xmbench.models import capabilities

        own = dict(capabilities.named_parameters(self.model))
        swapped = []
        was_training = capabilities.set_training(self.model, False)
        try:
            with torch.no_grad():
                for name, average in self.ema.items():
                    parameter = own[name]
                    swapped.append((parameter, parameter.data))
                    parameter.data = average
                return {m: capabilities.encode(self.model, m, x).detach() for m, x in batch.inputs.items()
                        if m in self.model.modalities}
        finally:
            for parameter, data in swapped:
                parameter.data = data
            capabilities.set_training(self.model, was_training)

    # -- hooks ------------------------------------------------------------------------------
    def on_train_start(self, state) -> None:
        from xmbench.errors import ConfigError

        if state.step_fn.teacher is not None and state.step_fn.teacher != self.teacher:
            raise ConfigError("train.callbacks.ema_teacher: this run already has a teacher (train.teacher); "
                              "a run distils from one teacher: drop one of them")
        self.model = state.model
        self._join_new()  # a resumed run's averages came with the checkpoint; the rest start at the weights
        state.step_fn.teacher = self.teacher
        self.installed = True

    def on_step_start(self, state) -> None:
        state.notes[f"{KEY}/decay"] = self.options.decay

    def on_step_end(self, state, log) -> None:
        self.update()

    def on_train_end(self, state) -> None:
        if self.installed and state.step_fn.teacher == self.teacher:
            state.step_fn.teacher = None
        self.installed = False

    # -- checkpoints ------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"ema": {name: t.detach().clone() for name, t in self.ema.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.ema = {name: t.clone() for name, t in state["ema"].items()}


@CALLBACKS.register(KEY, EmaTeacherOptions)
def ema_teacher(options: EmaTeacherOptions):
    """Self-distillation: the teacher is an exponential moving average of the student's trainable weights (decay)."""
    return EmaTeacher(options)
