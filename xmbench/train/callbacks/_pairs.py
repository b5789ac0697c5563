"""What the pair callbacks share: pair names, the configured pairs and weights, ramps, checks of a callback's options."""
from __future__ import annotations

import math

from xmbench.errors import ConfigError


def name(pair: tuple[str, str]) -> str:
    return f"{pair[0]}-{pair[1]}"


def round_half_up(x: float) -> int:
    """x rounded to the nearest integer, halves up (Python's round() takes halves to the even neighbour)."""
    return math.floor(x + 0.5)


def ramp(position: float, start: float, end: float, shape: str = "linear") -> float:
    """start → end as `position` goes 0 → 1 (clipped): linear, or cosine (slow at both ends)."""
    t = min(max(position, 0.0), 1.0)
    if shape == "cosine":
        t = (1 - math.cos(math.pi * t)) / 2
    return start + (end - start) * t


def world_size() -> int:
    """Processes training together (torchrun): 1 when the run is alone."""
    from xmbench.train import distributed

    ranks = distributed.current()
    return ranks.world if ranks else 1


def check_pairs(callback: str, option: str, names, trained: list[tuple[str, str]]) -> None:
    """Every pair an option names must be one that trains in this run."""
    known = [name(p) for p in trained]
    for pair in names:
        if pair not in known:
            raise ConfigError(f"train.callbacks.{callback}.{option}: '{pair}' is not a trained pair "
                              f"(trained: {', '.join(known)})")


def check_positive_weight(callback: str, state) -> None:
    """The objective divides by the weights of the training pairs: at least one must be positive."""
    step_fn = state.step_fn
    if not sum(step_fn.pair_weights.get(name(p), 1.0) for p in step_fn.pairs) > 0:
        raise ConfigError(f"train.callbacks.{callback}: at step {state.step} every training pair "
                          f"({', '.join(name(p) for p in step_fn.pairs)}) has weight 0")
