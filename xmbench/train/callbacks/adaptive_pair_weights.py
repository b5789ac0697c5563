"""Adaptive pair weights: each pair weighs by how far its validation R@1 is from perfect, updated at every validation.

At each validation point, for every pair p = (a, b) that trains in this run (the pairs at the
start of training), r_p = the mean R@1 of its two directions on the validation split (a2b and
b2a, those the validation measured; a pair with neither keeps its weight) and

    u_p = max((1 − r_p)^power, floor),   w_p = u_p / mean_q u_q   (the mean over the measured pairs is 1)

so the pair the model retrieves worst weighs most. `power` = 0 gives every pair weight 1; `floor`
keeps a solved pair (r_p = 1) in training. The weights replace the pair weights (`train.pair_weights`
holds until the first validation point) and hold until the next point; a resumed run restores the
latest ones. Listed before a callback that sets pair weights at every step (pair_weight_schedule),
this one is overridden for the pairs that callback names.

In `state.notes` from the first validation point on: `adaptive_pair_weights/weights` ({pair: w})
and `adaptive_pair_weights/r1` ({pair: r}).

Validation runs on the main process only: under torchrun the other ranks see no validation point
and keep their weights, so this callback is meant for single-process runs for now.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from xmbench.config import MODALITY_LETTER
from xmbench.registry import CALLBACKS
from xmbench.schema import NON_NEGATIVE, Range
from xmbench.train.callbacks._pairs import name
from xmbench.train.hooks import Callback

KEY = "adaptive_pair_weights"


@dataclass(frozen=True)
class AdaptivePairWeightsOptions:
    """Attributes:
    power: weights ∝ (1 − mean validation R@1 of the pair's two directions)^power; 0: equal weights.
    floor: the least (1 − R@1)^power a pair counts with before normalising, so that a solved pair keeps training.
    """

    power: Annotated[float, NON_NEGATIVE] = 1.0
    floor: Annotated[float, Range(0, 1)] = 0.05


def pair_r1(pair: tuple[str, str], val_r1: dict[str, float]) -> float | None:
    """The mean R@1 of the pair's two directions among those measured; None when neither was."""
    a, b = (MODALITY_LETTER[m] for m in pair)
    found = [val_r1[d] for d in (f"{a}2{b}", f"{b}2{a}") if d in val_r1]
    return sum(found) / len(found) if found else None


def adaptive_weights(r1: dict[str, float], power: float, floor: float) -> dict[str, float]:
    """{pair: weight} with mean 1 from each pair's R@1 (see the module's formula)."""
    raw = {pair: max((1.0 - r) ** power, floor) for pair, r in r1.items()}
    total = sum(raw.values())
    if total <= 0:  # every pair solved and floor 0: nothing to prefer
        return dict.fromkeys(raw, 1.0)
    return {pair: u * len(raw) / total for pair, u in raw.items()}


class AdaptivePairWeights(Callback):
    def __init__(self, options: AdaptivePairWeightsOptions):
        self.options = options
        self.pairs: list[tuple[str, str]] = []
        self.weights: dict[str, float] = {}  # the latest adaptive weights ({} before the first validation)
        self.r1: dict[str, float] = {}

    def on_train_start(self, state) -> None:
        self.pairs = list(state.step_fn.pairs)
        if self.weights:  # resumed: the weights of the latest validation point
            self._apply(state)

    def on_validation(self, state, point) -> None:
        measured = {name(p): pair_r1(p, point.val_r1) for p in self.pairs}
        self.r1 = {pair: r for pair, r in measured.items() if r is not None}
        if not self.r1:
            return
        self.weights = adaptive_weights(self.r1, self.options.power, self.options.floor)
        self._apply(state)

    def _apply(self, state) -> None:
        state.step_fn.pair_weights = {**state.step_fn.pair_weights, **self.weights}
        state.notes[f"{KEY}/weights"] = dict(self.weights)
        state.notes[f"{KEY}/r1"] = dict(self.r1)

    def state_dict(self) -> dict:
        return {"weights": dict(self.weights), "r1": dict(self.r1)}

    def load_state_dict(self, state: dict) -> None:
        self.weights, self.r1 = dict(state["weights"]), dict(state["r1"])


@CALLBACKS.register(KEY, AdaptivePairWeightsOptions)
def adaptive_pair_weights(options: AdaptivePairWeightsOptions):
    """Pair weights ∝ (1 − the pair's validation R@1)^power, mean 1, updated at every validation point."""
    return AdaptivePairWeights(options)
