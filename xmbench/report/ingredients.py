"""Derived runs (ensembles, soups, fused scores) against their best ingredient, paired over queries.

A derived run is worth its extra cost only if it beats the best of the runs it is built from, not
just the suite's reference. For each derived variant (its record's `config["inputs"]` names the
ingredient variants), the ingredient with the highest mean rsum over the seeds the derived run has
is its baseline; Δ rsum and Δ R@1 per direction are paired over the same test queries and seeds and
bootstrapped exactly as in the techniques table (xmbench/report/techniques.py), and the query
latency of both is shown beside them (an ensemble of four encodes every query four times).
"""
from __future__ import annotations

import statistics

import pandas as pd

from xmbench.report.techniques import quality_deltas


def ingredient_frame(records) -> pd.DataFrame:
    """One row per derived variant: its best ingredient, Δ quality against it, and both query latencies."""
    ok = [r for r in records if r.ok]
    rows = []
    for variant in dict.fromkeys(r.variant for r in ok if r.config.get("inputs")):
        runs = [r for r in ok if r.variant == variant]
        seeds = {r.seed for r in runs}
        ingredients = {name: [r for r in ok if r.variant == name and r.seed in seeds] for name in runs[0].config["inputs"]}
        ingredients = {name: found for name, found in ingredients.items() if found}
        if not ingredients:
            continue
        best = max(ingredients, key=lambda name: statistics.mean(r.metrics["rsum"] for r in ingredients[name]))
        row = {"derived run": variant, "best ingredient": best, "seeds": len(runs),
               **quality_deltas(runs, ingredients[best]),
               "query ms": _query_ms(runs), "best ingredient query ms": _query_ms(ingredients[best])}
        rows.append(row)
    return pd.DataFrame(rows)


def _query_ms(runs) -> str:
    """Median over seeds of the one-query path's p50, in ms."""
    p50s = [r.timings["query_latency_s"]["p50"] for r in runs if "query_latency_s" in r.timings]
    return f"{1e3 * statistics.median(p50s):.2f}" if p50s else "–"


INTRO = ("Derived runs against their best ingredient (the input variant with the highest mean rsum): Δ in points, "
         "paired over the same test queries and seeds, 95% bootstrap interval.")


def ingredient_table(records) -> str:
    """The markdown section, empty when the suite has no derived runs."""
    frame = ingredient_frame(records)
    return "" if frame.empty else f"{INTRO}\n\n{frame.to_markdown(index=False)}\n"
