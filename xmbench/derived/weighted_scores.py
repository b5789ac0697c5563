"""Score-level ensemble with weights fitted on the validation split (a grid search over the simplex).

Every member's similarity matrices on the validation split are computed once; each point of a
grid of weights (w_m ≥ 0, Σ w_m = 1, steps of `grid_step`) is scored by `metric` averaged over the
evaluated directions, and the best point wins (ties: the point closest to equal weights). The
fitted weights, and the validation scores of the fit and of equal weights, are reported by
`adapter_stats()`, which the record keeps under profile.adapters.weighted_scores.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

from xmbench.derived.score_ensemble import ScoreEnsemble
from xmbench.errors import ConfigError
from xmbench.registry import DERIVED
from xmbench.schema import Range

MAX_GRID_POINTS = 20_000  # C(1/step + inputs − 1, inputs − 1) points; each ranks the validation split once


@dataclass(frozen=True)
class WeightedScoresOptions:
    """Attributes:
    grid_step: spacing of the weight grid (weights >= 0 summing to 1); 1 / grid_step must be a whole number.
    metric: what the weights maximise on the validation split, averaged over the evaluated directions.
    """

    grid_step: Annotated[float, Range(0, 1, low_open=True)] = 0.1
    metric: Literal["R@1", "R@5", "R@10", "mAP", "mAP@10", "MRR"] = "R@1"

    def __post_init__(self):
        divisions = 1.0 / self.grid_step
        if abs(divisions - round(divisions)) > 1e-6:
            raise ConfigError(f"grid_step: 1 / grid_step must be a whole number (0.5, 0.25, 0.1, …), got {self.grid_step}")


class WeightedScoreEnsemble(ScoreEnsemble):
    """A score ensemble whose weights were fitted on validation; `adapter_stats()` reports the fit."""

    def __init__(self, members: list, weights: list[float], fit: dict):
        super().__init__(members, weights)
        self.fit = fit

    def adapter_stats(self) -> dict:
        return {"weighted_scores": self.fit}


def grid_points(n_members: int, divisions: int):
    """Every composition of `divisions` into `n_members` non-negative parts, as weights (parts / divisions)."""
    def compositions(total: int, parts: int):
        if parts == 1:
            yield (total,)
            return
        for first in range(total, -1, -1):
            for rest in compositions(total - first, parts - 1):
                yield (first, *rest)

    for parts in compositions(divisions, n_members):
        yield [p / divisions for p in parts]


def fit_weights(similarities: dict, split, metric: str, divisions: int, chunk_size: int = 1024) -> dict:
    """The grid point maximising `metric` of Σ_m w_m · S_m over the directions; see the module docstring."""
    import torch

    from xmbench.derived._fitting import scores_metric

    n_members = next(iter(similarities.values())).shape[0]
    uniform = [1.0 / n_members] * n_members

    def value(weights: list[float]) -> float:
        w = torch.tensor(weights, dtype=torch.float32)
        return scores_metric({d: torch.tensordot(w, s, dims=1) for d, s in similarities.items()}, split, metric,
                             chunk_size)

    best, best_key = None, None
    tried = 0
    for weights in grid_points(n_members, divisions):
        tried += 1
        score = value(weights)
        distance = math.dist(weights, uniform)
        key = (score, -distance)
        if best_key is None or key > best_key:
            best, best_key = weights, key
    return {"weights": best, "val_score": best_key[0], "uniform_val_score": value(uniform), "grid_points": tried}


@DERIVED.register("weighted_scores", WeightedScoresOptions)
def weighted_scores(models: list, options: WeightedScoresOptions, val=None,
                    eval_config=None) -> WeightedScoreEnsemble:
    """Score-level ensemble with weights fitted on the validation split (grid search maximising mean R@1 by default)."""
    from xmbench.derived._fitting import directions_on, eval_settings, member_similarities

    if val is None:
        raise ConfigError("weighted_scores: fits its weights on the validation split, and none was given")
    divisions = round(1.0 / options.grid_step)
    points = math.comb(divisions + len(models) - 1, len(models) - 1)
    if points > MAX_GRID_POINTS:
        raise ConfigError(f"weighted_scores: grid_step {options.grid_step} over {len(models)} inputs is {points} "
                          f"weightings (at most {MAX_GRID_POINTS}); choose a coarser grid_step")
    directions = directions_on(val, models, eval_config, "weighted_scores")
    similarities = member_similarities(models, val, directions, eval_config)
    fit = fit_weights(similarities, val, options.metric, divisions, eval_settings(eval_config).chunk_size)
    fit.update(metric=options.metric, directions=directions, grid_step=options.grid_step)
    return WeightedScoreEnsemble(models, fit["weights"], fit)
