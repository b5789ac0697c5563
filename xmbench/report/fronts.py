"""Pareto fronts: the variants that no other beats on both higher quality and lower cost.

The roadmap's fronts put each technique at (its cost against the suite's reference, Δ rsum), the
reference itself at (0, 0): a technique off the front is beaten on both by one on it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

# (the technique row's key, its label, how a value prints)
COSTS = (("latency_rise", "query latency rise", lambda v: f"{100 * v:+.0f}%"),
         ("trainable_rise", "trainable-parameter rise", lambda v: f"{100 * v:+.0f}%"),
         ("peak_memory_delta_mb", "peak memory Δ", lambda v: f"{v:+.0f} MiB"))


def frontier(points: pd.DataFrame, cost: str) -> pd.DataFrame:
    """The points (index: names; columns `quality` and `cost`) that no other point beats on both a lower cost and a
    higher quality, by rising cost."""
    ordered = points.sort_values([cost, "quality"], ascending=[True, False])
    best, keep = -np.inf, []
    for name, row in ordered.iterrows():
        if row["quality"] > best:
            keep.append(name)
            best = row["quality"]
    return ordered.loc[keep]


def technique_points(rows: list[dict], cost: str) -> pd.DataFrame:
    """Δ rsum (`quality`) and one cost per technique row of one suite, the reference at (0, 0); rows lacking either
    are left out."""
    reference = f"{rows[0]['reference']} (reference)"
    points = [{"technique": reference, "quality": 0.0, cost: 0.0}]
    points += [{"technique": r["technique"], "quality": r["delta_rsum"], cost: r[cost]} for r in rows
               if r[cost] is not None and not np.isnan(r["delta_rsum"])]
    return pd.DataFrame(points).set_index("technique")


def fronts_frame(rows: list[dict]) -> pd.DataFrame:
    """Per suite and cost, the techniques on the front by rising cost: `name (Δ rsum, cost)`."""
    table = []
    for suite in dict.fromkeys(r["suite"] for r in rows):
        suite_rows = [r for r in rows if r["suite"] == suite]
        for cost, label, shown in COSTS:
            front = frontier(technique_points(suite_rows, cost), cost)
            members = [f"`{name}` ({p['quality']:+.1f}, {shown(p[cost])})" for name, p in front.iterrows()]
            table.append({"suite": suite, "cost": label, "front, by rising cost (Δ rsum, cost)": " → ".join(members)})
    return pd.DataFrame(table)
