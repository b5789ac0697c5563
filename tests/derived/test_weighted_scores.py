"""weighted_scores: weights fitted on validation by a grid search, checked against a brute-force search by hand."""
import math

import pytest

from tests.derived._helpers import (
    DIRECTIONS,
    assert_same_metrics,
    embeddings,
    member,
    metrics_of_scores,
    split,
)
from xmbench.errors import ConfigError
from xmbench.eval.retrieval import direction_modalities, evaluate_model
from xmbench.models import capabilities
from xmbench.registry import DERIVED

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def fitted(models, val, **options):
    return DERIVED.bind(DERIVED.default("weighted_scores", **options))(models, val=val, eval_config=None)


def test_fitted_weights_are_the_best_of_the_grid_on_validation_and_reach_the_record(tiny_base):
    members = [member(tiny_base, seed=0), member(tiny_base, seed=1), member(tiny_base, seed=2)]
    val, test = split(tiny_base, "val"), split(tiny_base, "test")
    model = fitted(members, val, grid_step=0.5, metric="MRR")
    # by hand: every weighting with steps of 1/2 (6 points), mean MRR over the directions on validation
    own = [embeddings(m, val) for m in members]
    grid = [w for w in ([a / 2, b / 2, (2 - a - b) / 2] for a in range(3) for b in range(3 - a))]
    assert len(grid) == 6

    def mean_mrr(weights):
        scores = {}
        for d in DIRECTIONS:
            q, g = direction_modalities(d)
            scores[d] = sum(w * e[q] @ e[g].T for w, e in zip(weights, own))
        return sum(m["MRR"] for m in metrics_of_scores(scores, val).values()) / len(DIRECTIONS)

    values = [mean_mrr(w) for w in grid]
    best = max(values)
    winners = [w for w, v in zip(grid, values) if abs(v - best) < 1e-9]
    expected = min(winners, key=lambda w: math.dist(w, [1 / 3] * 3))  # ties: closest to equal weights
    assert model.weights == pytest.approx(expected)
    fit = capabilities.adapter_stats(model)["weighted_scores"]  # the stage puts this under profile.adapters
    assert fit["weights"] == model.weights and fit["grid_points"] == 6 and fit["metric"] == "MRR"
    assert fit["val_score"] == pytest.approx(best, abs=1e-9)
    assert fit["uniform_val_score"] == pytest.approx(mean_mrr([1 / 3] * 3), abs=1e-9)
    assert fit["directions"] == list(DIRECTIONS)
    # on the test split it scores as the weighted mean of the members' similarities
    on_test = [embeddings(m, test) for m in members]
    hand = {}
    for d in DIRECTIONS:
        q, g = direction_modalities(d)
        hand[d] = sum(w * e[q] @ e[g].T for w, e in zip(model.weights, on_test))
    metrics, _, _ = evaluate_model(model, test, list(DIRECTIONS))
    assert_same_metrics(metrics, metrics_of_scores(hand, test))


def test_grid_options_are_checked_and_the_default_grid_fits_two_members(tiny_base):
    with pytest.raises(ConfigError, match="whole number"):
        DERIVED.default("weighted_scores", grid_step=0.3)
    members = [member(tiny_base, seed=0), member(tiny_base, seed=1)]
    val = split(tiny_base, "val")
    with pytest.raises(ConfigError, match="validation split"):
        fitted(members, None)
    with pytest.raises(ConfigError, match="coarser grid_step"):
        fitted(members * 4, val, grid_step=0.01)
    model = fitted(members, val)  # defaults: steps of 0.1, mean R@1
    assert model.fit["grid_points"] == 11 and model.fit["metric"] == "R@1"
    assert sum(model.weights) == pytest.approx(1.0) and min(model.weights) >= 0
    assert model.fit["val_score"] >= model.fit["uniform_val_score"]
