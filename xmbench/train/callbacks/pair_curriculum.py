"""A pair curriculum: modality pairs join training one at a time, easiest first, in an order measured at the first step.

Difficulty is each pair's loss with the starting model. The TrainState offers no batch to measure
on, so the first step is the measuring step: every configured pair trains once, and the pairs'
losses in that step's log (`log.pair_losses`: the starting model's, on one shared batch) rank them,
lowest loss first (ties keep the configured order; a pair that a callback listed after this one
masked at that step comes last, also with hardest_first). Given an `order`, nothing is measured and the
curriculum starts at step 0.

From the first step after the measuring step ("start"), the first pair of the order trains alone,
and the k-th pair (k = 1…P) joins at step
- start + (k − 1) · every, with `every` > 0;
- start + round((k − 1) · (last − start) / (P − 1)), last = max(start, round(full_at · steps)),
  with `every` = 0: the joins are spread evenly and every pair trains from step `last` on
  (round: to the nearest integer, halves up).
Pairs keep the configured order in `step_fn.pairs`; pair weights are not touched. The schedule is
a function of the step alone, so callbacks listed after this one (modality_dropout) see its pairs.

In `state.notes`, so every step's log shows it: `pair_curriculum/pairs` (the pairs of the step),
and once measured or given, `pair_curriculum/order` and `pair_curriculum/joins` ({pair: step});
measured, also `pair_curriculum/difficulty` ({pair: loss at the measuring step}).

Under torchrun every rank measures and the pairs' losses are averaged over the ranks first, so
every rank trains the same pairs at every step.

A resumed run does not know the order measured before the interruption: its first step measures
again (every pair trains at that step) with the resumed model; give `order` for resumes that
reproduce the uninterrupted run exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from xmbench.config import Count, Pair
from xmbench.errors import ConfigError
from xmbench.registry import CALLBACKS
from xmbench.schema import Range
from xmbench.train.callbacks._pairs import check_pairs, name, round_half_up, world_size
from xmbench.train.hooks import Callback

KEY = "pair_curriculum"


@dataclass(frozen=True)
class PairCurriculumOptions:
    """Attributes:
    order: the pairs, easiest first; empty: measured from each pair's loss at the first step.
    hardest_first: start from the hardest pair instead (an anti-curriculum).
    every: steps between one pair joining and the next; 0: spread the joins evenly until full_at.
    full_at: share of training from which every pair trains (with every = 0).
    """

    order: list[Pair] = field(default_factory=list)
    hardest_first: bool = False
    every: Count = 0
    full_at: Annotated[float, Range(0, 1)] = 0.5

    def __post_init__(self):
        if len(set(self.order)) != len(self.order):
            raise ConfigError(f"order: names a pair twice: {', '.join(self.order)}")


class PairCurriculum(Callback):
    def __init__(self, options: PairCurriculumOptions):
        self.options = options
        self.configured: list[tuple[str, str]] = []
        self.order: list[str] | None = None  # easiest first (after hardest_first), once measured or given
        self.start = 0  # the first step of the curriculum proper
        self.measuring: int | None = None  # the step whose losses rank the pairs
        self.total_steps = 0

    def on_train_start(self, state) -> None:
        self.configured = list(state.step_fn.pairs)
        if self.options.order:
            check_pairs(KEY, "order", self.options.order, self.configured)
            missing = [name(p) for p in self.configured if name(p) not in self.options.order]
            if missing:
                raise ConfigError(f"train.callbacks.{KEY}.order: lacks trained pairs {', '.join(missing)}")
            self._set_order(list(self.options.order), state)

    def joins(self) -> dict[str, int]:
        """{pair: the step it joins}, in the curriculum's order."""
        count, start, every = len(self.order), self.start, self.options.every
        if every:
            return {pair: start + k * every for k, pair in enumerate(self.order)}
        last = max(start, round_half_up(self.options.full_at * self.total_steps))
        return {pair: start + (round_half_up(k * (last - start) / (count - 1)) if count > 1 else 0)
                for k, pair in enumerate(self.order)}

    def on_step_start(self, state) -> None:
        self.total_steps = state.total_steps
        if self.order is None:  # the measuring step: every pair trains once with the starting model
            self.measuring, self.start = state.step, state.step + 1
            state.step_fn.pairs = list(self.configured)
        else:
            joined = {pair for pair, step in self.joins().items() if step <= state.step}
            state.step_fn.pairs = [p for p in self.configured if name(p) in joined]
        state.notes[f"{KEY}/pairs"] = [name(p) for p in state.step_fn.pairs]

    def on_step_end(self, state, log) -> None:
        if self.order is not None or state.step != self.measuring:
            return
        measured = [name(p) for p in self.configured if name(p) in log.pair_losses]
        difficulty = {pair: float(log.pair_losses[pair]) for pair in measured}
        if world_size() > 1:  # each rank's losses may differ (local loss): every rank ranks the same means
            from xmbench.train import distributed

            difficulty = {pair: distributed.mean(value) for pair, value in difficulty.items()}
        unmeasured = [name(p) for p in self.configured if name(p) not in difficulty]  # masked at that step
        state.notes[f"{KEY}/difficulty"] = difficulty
        self._set_order(sorted(difficulty, key=difficulty.get), state, unmeasured)

    def _set_order(self, easiest_first: list[str], state, last: list[str] = ()) -> None:
        self.order = (easiest_first[::-1] if self.options.hardest_first else easiest_first) + list(last)
        self.total_steps = state.total_steps
        state.notes[f"{KEY}/order"] = list(self.order)
        state.notes[f"{KEY}/joins"] = self.joins()


@CALLBACKS.register(KEY, PairCurriculumOptions)
def pair_curriculum(options: PairCurriculumOptions):
    """Modality pairs join one at a time, easiest first (ranked by their losses at the first step)."""
    return PairCurriculum(options)
