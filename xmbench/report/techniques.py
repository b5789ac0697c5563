"""Every technique of a suite against its reference variant (`suite.reference`), paired over queries.

Each variant is compared with the reference on the same test queries and the same seeds: the
per-query differences (averaged over the seeds both ran) are bootstrapped, so an interval that
excludes 0 is a real change and one that straddles it is said to be "not significant". Δ rsum
resamples each direction's queries independently and sums. Costs sit beside quality: trainable
(and non-zero trainable) parameters, adapter bytes, step time, encode latency per tower.
"""
from __future__ import annotations

import statistics

import numpy as np
import pandas as pd

from xmbench.bench.compare import paired_differences
from xmbench.bench.stats import paired_bootstrap, paired_bootstrap_sum
from xmbench.config import DIRECTIONS
from xmbench.report.tuning import chosen_cell, searches

RSUM_KS = ("R@1", "R@5", "R@10")
HARD_NEGATIVE_COLUMN = "Δ R@1 hard-negative queries"


def reference_of(records) -> str | None:
    """The suite's reference: the one every record names, or, in a tuned suite whose tuned runs name the
    tuned reference, the one the others' references are compared with (the untuned)."""
    names = {r.reference for r in records if r.reference}
    if len(names) == 1:
        return names.pop()
    roots = {r.reference for r in records if r.variant in names and r.reference == r.variant}
    return roots.pop() if len(roots) == 1 else None


def technique_frame(records) -> pd.DataFrame:
    """One row per variant of a suite with a reference: Δ quality with intervals and verdicts, costs.

    Each variant is compared with the reference its records name; in a tuned suite ([tune] with
    `untuned = true`) the tuned runs name the tuned reference, and the `against` and `tuned` columns say
    which reference and which chosen point.
    """
    ok = [r for r in records if r.ok]
    references = {r.variant: r.reference for r in ok}
    if not any(ref in references for ref in references.values()):
        return pd.DataFrame()
    several = len(set(references.values()) - {None}) > 1
    found = searches(ok)
    rows = []
    for variant in dict.fromkeys(r.variant for r in ok):
        runs = [r for r in ok if r.variant == variant]
        reference = references[variant]
        is_reference = variant == reference or variant in references.values() and not several
        row = {"variant": variant + (" (reference)" if is_reference else ""), "seeds": len(runs)}
        if several:
            row["against"] = reference if reference != variant else "—"
        if found:
            row["tuned"] = chosen_cell(found[variant]) if variant in found else "—"
        base = [r for r in ok if r.variant == reference]
        if variant != reference and base:
            row.update(quality_deltas(runs, base))
        row.update(_costs(runs))
        rows.append(row)
    frame = pd.DataFrame(rows)
    deltas = [c for c in frame.columns if c.startswith("Δ")]
    frame[deltas] = frame[deltas].fillna("—")  # the reference's own row: nothing to compare
    geometry = [c for c in ("alignment", "uniformity") if c in frame]
    frame[geometry] = frame[geometry].fillna("–")  # a model that scores pairs (fusion) has no embedding geometry
    return frame


def quality_deltas(runs, base) -> dict:
    """Δ rsum and Δ R@1 per direction of `runs` against `base`, paired over queries and seeds, as cells."""
    directions = [d for d in DIRECTIONS if all(d in r.per_query for r in runs + base)]
    row: dict = {}
    rsum_parts = []
    for direction in directions:
        for metric in RSUM_KS:
            differences = paired_differences(runs, base, direction, metric)
            if differences is None:
                return {"Δ rsum": "different test queries: not comparable"}
            rsum_parts.append(100 * differences)
    if rsum_parts:
        low, high = paired_bootstrap_sum(rsum_parts)
        row["Δ rsum"] = _cell(float(sum(p.mean() for p in rsum_parts)), low, high)
    for direction in directions:
        differences = 100 * paired_differences(runs, base, direction, "R@1")
        row[f"Δ {direction} R@1"] = _cell(float(differences.mean()), *paired_bootstrap(differences))
    hard = hard_negative_delta(runs, base, directions)
    if hard:
        row[HARD_NEGATIVE_COLUMN] = hard
    return row


def hard_negative_delta(runs, base, directions) -> str | None:
    """Δ R@1 on the queries whose item has a known hard negative in the test split, the mean over
    directions (each direction's queries resampled on their own); None when the records do not say
    which queries those are, or say differently."""
    parts = []
    for direction in directions:
        subsets = {tuple(r.per_query[direction].get("hard_negative_rows") or ()) for r in runs + base}
        rows = list(subsets.pop()) if len(subsets) == 1 else []
        if not rows:
            return None
        parts.append(100 * paired_differences(runs, base, direction, "R@1")[rows] / len(directions))
    if not parts:
        return None
    return _cell(float(sum(p.mean() for p in parts)), *paired_bootstrap_sum(parts))


def _cell(delta: float, low: float, high: float) -> str:
    verdict = "not significant" if low <= 0 <= high else ("better" if low > 0 else "worse")
    return f"{delta:+.1f} [{low:+.1f}, {high:+.1f}] {verdict}"


def _costs(runs) -> dict:
    first = runs[0]
    row = {"trainable": first.costs.get("trainable_params"), "non-zero": first.costs.get("nonzero_trainable_params"),
           "adapter bytes": first.costs.get("adapter_bytes")}
    steps = [r.costs["step_time_s"] for r in runs if r.costs.get("step_time_s")]
    row["step ms"] = f"{1e3 * statistics.median(steps):.0f}" if steps else "–"
    for name, p50 in _encode_latency(runs).items():
        row[name] = p50
    row.update(_geometry(runs))
    return row


def _geometry(runs) -> dict:
    """Mean alignment over modality pairs and mean uniformity over modalities (Wang & Isola; lower is
    better for both), medians over seeds: what embedding-space techniques are meant to move."""
    analyses = [r.profile.get("alignment") for r in runs if r.profile.get("alignment")]
    if not analyses:
        return {}
    alignment = [np.mean([p["alignment"] for p in a["pairs"].values()]) for a in analyses]
    uniformity = [np.mean(list(a["uniformity"].values())) for a in analyses]
    return {"alignment": f"{statistics.median(alignment):.3f}", "uniformity": f"{statistics.median(uniformity):.3f}"}


def _encode_latency(runs) -> dict[str, str]:
    """p50 ms of each tower's encoder at the smallest probed batch, median over seeds."""
    names = sorted({n for r in runs for n in r.timings if n.startswith("encode.")},
                   key=lambda n: (n.split(".")[1], int(n.split(".b")[-1])))
    smallest: dict[str, str] = {}
    for name in names:
        smallest.setdefault(name.split(".")[1], name)
    cells = {}
    for modality, name in smallest.items():
        p50 = statistics.median(r.timings[name]["p50"] for r in runs if name in r.timings)
        cells[f"encode {modality} {name.split('.')[-1]} ms"] = f"{1e3 * p50:.2f}"
    return cells


def technique_table(records) -> str:
    frame = technique_frame(records)
    if frame.empty:
        return ""
    reference = reference_of(records)
    tuned = (" Tuned runs ([tune]) are compared with the tuned reference (column `against`), and `tuned` is the point "
             "each chose on validation." if "against" in frame else "")
    return (f"Techniques against the reference `{reference}`:{tuned} Δ in points, paired over the same test queries "
            f"and seeds, 95% bootstrap interval, and the verdict (an interval that contains 0 is not "
            f"significant). {HARD_NEGATIVE_COLUMN}: R@1 over the directions' queries whose item has a known "
            f"hard negative in the test split (one attribute changed, or two objects swapped), mean of the "
            f"directions.\n\n" + frame.to_markdown(index=False) + "\n")


def quality_and_cost_points(records) -> pd.DataFrame:
    """Mean rsum and trainable parameters per variant: the points of the quality–cost Pareto plot."""
    ok = [r for r in records if r.ok]
    rows = [{"variant": v, "quality": float(np.mean([r.metrics.get("rsum", np.nan) for r in ok if r.variant == v])),
             "trainable_params": next(r.costs.get("trainable_params") for r in ok if r.variant == v)}
            for v in dict.fromkeys(r.variant for r in ok)]
    return pd.DataFrame(rows).set_index("variant") if rows else pd.DataFrame()
