"""Scheduled pair weights and batch size: each ramps from a start to an end value over training.

At step s of a run of S steps the ramp's position is t = s / (S − 1) (0 at the first step, 1 at
the last), rescaled to the `ramp` window [a, b]: u = clip((t − a) / (b − a), 0, 1) (before a the
start value, after b the end value; a = b switches at a). Each pair named in `weights` then
weighs start + (end − start) · f(u), f(u) = u (linear) or (1 − cos πu) / 2 (cosine); the other
pairs keep their configured weight. With `batch_size = [start, end]` the sampler's batch size is
round(start + (end − start) · f(u)) items (halves up) (per rank, as `train.batch_size`: under torchrun the
sampler draws that many times the ranks). Without `weights` and `batch_size` it changes nothing.

Values are set at every step's start from the step alone (resumes continue the same schedule),
so callbacks listed after this one see them. In `state.notes`: `pair_weight_schedule/weights`
({pair: weight} of the scheduled pairs) and `pair_weight_schedule/batch_size`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from xmbench.config import PAIRS, PositiveInt
from xmbench.errors import ConfigError
from xmbench.registry import CALLBACKS
from xmbench.schema import NON_NEGATIVE, Range
from xmbench.train.callbacks._pairs import check_pairs, check_positive_weight, ramp, round_half_up, world_size
from xmbench.train.hooks import Callback

KEY = "pair_weight_schedule"


@dataclass(frozen=True)
class PairWeightScheduleOptions:
    """Attributes:
    weights: pair → [start, end] weight, e.g. { "image-audio" = [1.0, 3.0] }; other pairs keep their weight.
    batch_size: [start, end] items per batch; empty: the configured batch size throughout.
    ramp: [a, b], the share of training over which values move from start to end.
    shape: linear, or cosine (slow at both ends).
    """

    weights: dict[str, list[Annotated[float, NON_NEGATIVE]]] = field(default_factory=dict)
    batch_size: list[PositiveInt] = field(default_factory=list)
    ramp: list[Annotated[float, Range(0, 1)]] = field(default_factory=lambda: [0.0, 1.0])
    shape: Literal["linear", "cosine"] = "linear"

    def __post_init__(self):
        for pair, values in self.weights.items():
            if pair not in PAIRS:
                raise ConfigError(f"weights.{pair}: not a modality pair ({', '.join(PAIRS)})")
            if len(values) != 2:
                raise ConfigError(f"weights.{pair}: expected [start, end], got {values}")
        if self.batch_size and len(self.batch_size) != 2:
            raise ConfigError(f"batch_size: expected [start, end] or nothing, got {self.batch_size}")
        if len(self.ramp) != 2 or self.ramp[0] > self.ramp[1]:
            raise ConfigError(f"ramp: expected [a, b] with 0 <= a <= b <= 1, got {self.ramp}")


class PairWeightSchedule(Callback):
    def __init__(self, options: PairWeightScheduleOptions):
        self.options = options

    def on_train_start(self, state) -> None:
        check_pairs(KEY, "weights", self.options.weights, state.step_fn.pairs)

    def position(self, state) -> float:
        """Where the step is on the ramp window: 0 (start values) … 1 (end values)."""
        t = state.step / max(state.total_steps - 1, 1)
        a, b = self.options.ramp
        if b == a:
            return 1.0 if t >= a else 0.0
        return (t - a) / (b - a)

    def on_step_start(self, state) -> None:
        u, shape = self.position(state), self.options.shape
        if self.options.weights:
            scheduled = {pair: ramp(u, start, end, shape) for pair, (start, end) in self.options.weights.items()}
            state.step_fn.pair_weights = {**state.step_fn.pair_weights, **scheduled}
            state.notes[f"{KEY}/weights"] = scheduled
            check_positive_weight(KEY, state)
        if self.options.batch_size:
            start, end = self.options.batch_size
            size = max(1, round_half_up(ramp(u, start, end, shape)))
            state.sampler.batch_size = size * world_size()  # the sampler draws the global batch of every rank
            state.notes[f"{KEY}/batch_size"] = size


@CALLBACKS.register(KEY, PairWeightScheduleOptions)
def pair_weight_schedule(options: PairWeightScheduleOptions):
    """Pair weights and batch size ramped from a start to an end value over training (linear or cosine)."""
    return PairWeightSchedule(options)
