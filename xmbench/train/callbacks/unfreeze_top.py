"""Selective unfreezing: the top N transformer layers of chosen towers fine-tune fully from a given step.

At the first step ≥ `at_step` (0: from the start of training), every parameter of the top
`layers` layers of each chosen tower starts training: the base weights (also LoRA's frozen
`.base_layer.` weights under peft's `base_model.model.` prefix), biases and LayerNorms, and
with `final_norm` the tower's norm above its last layer (ViT's and AST's `layernorm`). The
adapters everywhere keep training as before, so below the unfrozen layers the tower stays
parameter-efficient. Layers are counted from the top of each tower (layer indices from the
`.layer.N.`/`.layers.N.` names, see xmbench/train/callbacks/_unfreeze.py); `layers` larger
than a tower's depth unfreezes all its layers. The parameters join the optimizer through
`TrainState.set_trainable`: their component's group (per layer with `train.layer_decay`), so
`train.lr_scale` and layer decay apply to them too. Nothing is frozen again afterwards.

In `state.notes`: `unfreeze_top/unfrozen`, the number of parameter tensors that started
training at this step (0 at the others). A tower without layers is an error at train start.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from xmbench.registry import CALLBACKS
from xmbench.schema import NON_NEGATIVE, POSITIVE
from xmbench.train.hooks import Callback

KEY = "unfreeze_top"


@dataclass(frozen=True)
class UnfreezeTopOptions:
    """Attributes:
    layers: how many transformer layers, from the top of each chosen tower, fine-tune fully.
    towers: the modalities whose towers unfreeze; empty: every tower of the model.
    at_step: the step from which they train (0: from the start).
    final_norm: also unfreeze the tower's norm above its last layer (ViT/AST `layernorm`), if it has one.
    """

    layers: Annotated[int, POSITIVE] = 1
    towers: list[Literal["text", "image", "audio"]] = field(default_factory=list)
    at_step: Annotated[int, NON_NEGATIVE] = 0
    final_norm: bool = True


class UnfreezeTop(Callback):
    def __init__(self, options: UnfreezeTopOptions):
        self.options = options
        self.predicate = None
        self.done = False

    def on_train_start(self, state) -> None:
        from xmbench.train.callbacks._unfreeze import top_layers, tower_layers

        depths = tower_layers(state.model, self.options.towers)
        self.predicate = top_layers(state.model, depths, self.options.layers, self.options.final_norm)
        self.done = False

    def on_step_start(self, state) -> None:
        unfrozen = 0
        if not self.done and state.step >= self.options.at_step:
            unfrozen = state.set_trainable(self.predicate, True)
            self.done = True
        state.notes[f"{KEY}/unfrozen"] = unfrozen


@CALLBACKS.register(KEY, UnfreezeTopOptions)
def unfreeze_top(options: UnfreezeTopOptions):
    """Fully fine-tune the top N transformer layers of chosen towers from a step on; adapters below keep training."""
    return UnfreezeTop(options)
