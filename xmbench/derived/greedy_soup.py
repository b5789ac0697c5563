"""Greedy model soup (Wortsman et al. 2022): ingredients by validation score, each kept only if the soup does not get worse.

The inputs are sorted by their own validation score (best first; ties keep the suite's order);
the soup starts as the best one, and each next ingredient is added when the soup's validation
score with it is at least the score without it. What was tried and kept is reported by
`adapter_stats()["soup"]` (the record's profile.adapters.soup) and `model.soup`; ingredients are
named by their position in the derived run's `inputs`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from xmbench.registry import DERIVED


@dataclass(frozen=True)
class GreedySoupOptions:
    """Attributes:
    metric: the validation score, averaged over the evaluated directions; an ingredient stays when it does not lower it.
    average: trainable (adapters, heads, temperature; the rest must be equal in every input), or all floating-point tensors.
    """

    metric: Literal["R@1", "R@5", "R@10", "mAP", "mAP@10", "MRR"] = "R@1"
    average: Literal["trainable", "all"] = "trainable"


@DERIVED.register("greedy_soup", GreedySoupOptions)
def greedy_soup(models: list, options: GreedySoupOptions, val=None, eval_config=None):
    """Greedy soup: add ingredients best-first while the validation score does not drop (mean R@1 by default)."""
    from xmbench.derived import _soup
    from xmbench.derived._fitting import directions_on, model_score
    from xmbench.errors import ConfigError

    if val is None:
        raise ConfigError("greedy_soup: chooses its ingredients on the validation split, and none was given")
    names = _soup.soup_names(models, "greedy_soup", options.average)
    directions = directions_on(val, models, eval_config, "greedy_soup")

    def score(model) -> float:
        return model_score(model, val, directions, options.metric, eval_config)

    own = [score(m) for m in models]
    order = sorted(range(len(models)), key=lambda i: -own[i])  # stable: ties keep the inputs' order
    ingredients = [_soup.ingredient(m, names) for m in models]
    soup = _soup.vessel(models)
    kept, best, tried = [order[0]], own[order[0]], []
    for candidate in order[1:]:
        _soup.load(soup, _soup.average([ingredients[i] for i in kept + [candidate]]))
        value = score(soup)
        tried.append({"input": candidate, "soup_val_score": value, "kept": value >= best})
        if value >= best:
            kept.append(candidate)
            best = value
    _soup.load(soup, _soup.average([ingredients[i] for i in kept]))
    _soup.report(soup, {"method": "greedy", "average": options.average, "metric": options.metric,
                        "directions": directions, "val_scores": own, "order": order, "tried": tried,
                        "ingredients": sorted(kept), "val_score": best, "tensors": len(names)})
    return soup
