"""Progressive (gradual) unfreezing, ULMFiT-style: one more transformer layer, from the top, every K steps.

At step s ≥ `start` the top n(s) = min(max_layers, 1 + ⌊(s − start) / every⌋) layers of each
chosen tower fine-tune fully (before `start`, none): the top layer from step `start`, the next
one down from `start + every`, and so on until `max_layers` layers train (or the tower has no
more). What a layer's unfreezing covers is as for `unfreeze_top` (base weights, LoRA's
`.base_layer.` weights, norms; with `final_norm` the tower's norm above its last layer, from
the first unfrozen layer on); the adapters keep training throughout. Unfrozen parameters join
the optimizer (their component's group, per layer with `train.layer_decay`) and stay unfrozen.

The count is a function of the step alone, so a resumed run unfreezes the same layers. In
`state.notes`: `progressive_unfreeze/layers`, n(s) at each step.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from xmbench.registry import CALLBACKS
from xmbench.schema import NON_NEGATIVE, POSITIVE
from xmbench.train.hooks import Callback

KEY = "progressive_unfreeze"


@dataclass(frozen=True)
class ProgressiveUnfreezeOptions:
    """Attributes:
    every: steps between two unfreezings (K): one more layer from the top every K steps.
    max_layers: the most layers, from the top of each tower, that end up unfrozen.
    start: the step at which the top layer unfreezes.
    towers: the modalities whose towers unfreeze; empty: every tower of the model.
    final_norm: also unfreeze the tower's norm above its last layer (ViT/AST `layernorm`) with the first layer.
    """

    every: Annotated[int, POSITIVE] = 10
    max_layers: Annotated[int, POSITIVE] = 2
    start: Annotated[int, NON_NEGATIVE] = 0
    towers: list[Literal["text", "image", "audio"]] = field(default_factory=list)
    final_norm: bool = True


def layers_at(step: int, options: ProgressiveUnfreezeOptions) -> int:
    """n(step): how many top layers train at this step."""
    if step < options.start:
        return 0
    return min(options.max_layers, 1 + (step - options.start) // options.every)


class ProgressiveUnfreeze(Callback):
    def __init__(self, options: ProgressiveUnfreezeOptions):
        self.options = options
        self.depths: dict[str, int] = {}
        self.unfrozen = 0  # layers unfrozen so far

    def on_train_start(self, state) -> None:
        from xmbench.train.callbacks._unfreeze import tower_layers

        self.depths = tower_layers(state.model, self.options.towers)
        self.unfrozen = 0

    def on_step_start(self, state) -> None:
        from xmbench.train.callbacks._unfreeze import top_layers

        wanted = layers_at(state.step, self.options)
        if wanted > self.unfrozen:
            state.set_trainable(top_layers(state.model, self.depths, wanted, self.options.final_norm), True)
            self.unfrozen = wanted
        state.notes[f"{KEY}/layers"] = self.unfrozen


@CALLBACKS.register(KEY, ProgressiveUnfreezeOptions)
def progressive_unfreeze(options: ProgressiveUnfreezeOptions):
    """Gradual unfreezing: one more transformer layer from the top of chosen towers every K steps, up to a maximum."""
    return ProgressiveUnfreeze(options)
