"""Pareto fronts: undominated points, and the roadmap's fronts of techniques against their reference."""
import math

import pandas as pd

from xmbench.report.fronts import frontier, fronts_frame, technique_points


def test_pareto_frontier_keeps_only_undominated_points():
    points = pd.DataFrame({"quality": [50, 40, 60, 55], "cost": [1.0, 2.0, 3.0, 4.0]}, index=list("abcd"))
    assert list(frontier(points, "cost").index) == ["a", "c"]


def row(technique, delta, latency, trainable, memory, suite="s"):
    return {"suite": suite, "technique": technique, "reference": "ref", "delta_rsum": delta, "latency_rise": latency,
            "trainable_rise": trainable, "peak_memory_delta_mb": memory}


def test_the_reference_sits_at_the_origin_and_rows_without_the_cost_are_left_out():
    rows = [row("up", 10.0, 0.1, 0.0, 5.0), row("unjudged", 20.0, None, 0.0, 5.0), row("broken", math.nan, 0.0, 0.0, 0.0)]
    points = technique_points(rows, "latency_rise")
    assert points.to_dict("index") == {"ref (reference)": {"quality": 0.0, "latency_rise": 0.0},
                                       "up": {"quality": 10.0, "latency_rise": 0.1}}


def test_each_cost_has_its_front_by_rising_cost():
    rows = [row("cheap", 5.0, -0.1, 0.0, -20.0), row("big", 30.0, 0.5, 3.0, 100.0), row("bad", -2.0, 0.0, 0.0, 50.0),
            row("mid", 10.0, 0.6, 1.0, 10.0), row("other", 1.0, 0.0, 0.0, 0.0, suite="t")]
    frame = fronts_frame(rows).set_index(["suite", "cost"])["front, by rising cost (Δ rsum, cost)"]
    assert frame["s", "query latency rise"] == "`cheap` (+5.0, -10%) → `big` (+30.0, +50%)"
    assert frame["s", "trainable-parameter rise"] == "`cheap` (+5.0, +0%) → `mid` (+10.0, +100%) → `big` (+30.0, +300%)"
    assert frame["s", "peak memory Δ"] == "`cheap` (+5.0, -20 MiB) → `mid` (+10.0, +10 MiB) → `big` (+30.0, +100 MiB)"
    assert frame["t", "peak memory Δ"] == "`other` (+1.0, +0 MiB)"  # ties on cost: the better one only
