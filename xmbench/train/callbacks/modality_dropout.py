"""Modality dropout: at a step, with probability p, one modality is masked and the pairs that include it do not train.

Each step draws u and then a candidate uniformly from a generator seeded with (seed, step), so
the masks are reproducible, do not depend on anything else drawn in the run, and a resumed run
draws the same ones. When u < p one modality is dropped among the candidates: the modalities of
the step's pairs (only those listed in `modalities`, when set) whose removal leaves at least one
pair; with no candidate nothing is dropped. A masked modality is not encoded at that step (the
step encodes only the modalities of its pairs) and its pairs add no loss.

The pairs are the step's pairs as the callbacks before this one left them (list this after any
curriculum); the pairs it removed are put back at the step's end, unless a callback changed them
meanwhile. In `state.notes`: `modality_dropout/dropped` (the masked modality, or None).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Annotated, Literal

from xmbench.registry import CALLBACKS
from xmbench.schema import PROBABILITY
from xmbench.train.hooks import Callback

KEY = "modality_dropout"


@dataclass(frozen=True)
class ModalityDropoutOptions:
    """Attributes:
    p: probability that a step masks one modality.
    modalities: the modalities that may be masked; empty: any.
    seed: seeds the masks (with the step number): the same seed masks the same steps.
    """

    p: Annotated[float, PROBABILITY] = 0.2
    modalities: list[Literal["text", "image", "audio"]] = field(default_factory=list)
    seed: int = 0


def draw(seed: int, step: int) -> tuple[float, float]:
    """The step's two uniform draws: whether to mask, and which candidate."""
    rng = random.Random(seed * 1_000_003 + step)
    return rng.random(), rng.random()


class ModalityDropout(Callback):
    def __init__(self, options: ModalityDropoutOptions):
        self.options = options
        self.restore: tuple[list, list] | None = None  # (pairs before the mask, pairs with the mask)

    def candidates(self, pairs: list[tuple[str, str]]) -> list[str]:
        present = sorted({m for pair in pairs for m in pair})
        allowed = [m for m in present if not self.options.modalities or m in self.options.modalities]
        return [m for m in allowed if any(m not in pair for pair in pairs)]

    def on_step_start(self, state) -> None:
        mask, pick = draw(self.options.seed, state.step)
        pairs = list(state.step_fn.pairs)
        candidates = self.candidates(pairs)
        dropped = candidates[int(pick * len(candidates))] if mask < self.options.p and candidates else None
        if dropped is not None:
            kept = [pair for pair in pairs if dropped not in pair]
            state.step_fn.pairs = kept
            self.restore = (pairs, kept)
        state.notes[f"{KEY}/dropped"] = dropped

    def on_step_end(self, state, log) -> None:
        self._put_back(state)

    def on_train_end(self, state) -> None:
        self._put_back(state)

    def _put_back(self, state) -> None:
        if self.restore is not None:
            before, masked = self.restore
            if state.step_fn.pairs is masked:  # nobody changed them since: undo this step's mask only
                state.step_fn.pairs = before
            self.restore = None


@CALLBACKS.register(KEY, ModalityDropoutOptions)
def modality_dropout(options: ModalityDropoutOptions):
    """Mask one modality at random at a step (probability p, seeded): its pairs do not train that step."""
    return ModalityDropout(options)
