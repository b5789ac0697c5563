"""The roadmap report: every technique of every suite against its reference, the costs beside the gains,
and the next steps in priority order.

Each suite that names a `reference` contributes one row per technique (xmbench.report.techniques
computes the paired intervals). The next steps rank the techniques whose gain is significant by

    priority = lower end of the 95% interval of Δ rsum / (1 + relative rise in query latency
               + relative rise in trainable parameters)

(rises only: a technique that saves latency or parameters is not rewarded twice). The latency is
each run's lower decile, as xmbench.bench.compare summarises a process, and a rise counts only when
it is at least 5% with every run of the technique slower than every run of the reference (or
compare calls it significant): on a shared 2-core machine the query-path p50 of one process moves
by tens of percent between identical runs, and with 3 seeds a side no permutation test reaches 5%. The
combination proposed takes the ranked techniques in rank order, each whole or not at all: one
whose settings touch those of a higher-ranked technique already in is left out (it is printed as a
suite variant to run and measure). A variant that sets exactly the settings of two or more
techniques of its suite together is a combination: it is not ranked, and it is measured against its
best ingredient (the highest Δ rsum) as well as against the reference.
"""
from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from xmbench.bench.compare import MIN_TIMING_EFFECT, WORSE, paired_differences, process_deciles, relative_deciles, timing_delta
from xmbench.bench.stats import paired_bootstrap_sum
from xmbench.config import DIRECTIONS, ModelConfig, TowerConfig
from xmbench.report.fronts import fronts_frame
from xmbench.report.markdown import suite_run_time
from xmbench.report.techniques import HARD_NEGATIVE_COLUMN, RSUM_KS, reference_of, technique_frame

RULE = ("priority = lower 95% bound of Δ rsum ÷ (1 + relative query-latency rise + relative trainable-parameter "
        "rise); only techniques whose Δ rsum interval lies above 0 are ranked, and a latency rise counts only when "
        "it is ≥ 5% with every run of the technique slower than every run of the reference (each run's p10), or "
        "the timing comparison finds it significant; n.s. otherwise. A suite's base itself, measured against a "
        "reference that changes it (day6_missing's complete data against its missing data), is not ranked: it shows "
        "what the reference's change costs, it is no step to take")


def technique_rows(records) -> list[dict]:
    """Per suite with a reference, per other variant: Δ rsum and its interval, and the relative cost changes."""
    rows = []
    for suite in dict.fromkeys(r.suite for r in records):
        runs = [r for r in records if r.suite == suite and r.ok]
        reference = reference_of(runs)
        base = [r for r in runs if r.variant == reference]
        if not reference or not base:
            continue
        suite_rows = [_row(suite, variant, [r for r in runs if r.variant == variant], base)
                      for variant in dict.fromkeys(r.variant for r in runs if r.variant != reference)]
        for row in suite_rows:
            parts = ingredients(row, suite_rows)
            if parts:  # a combination is measured against its best ingredient too, and not ranked as a technique
                best = max(parts, key=lambda r: r["delta_rsum"])
                row["combines"], row["best_ingredient"] = [r["technique"] for r in parts], best["technique"]
                row["versus_best"] = _row(suite, row["technique"], [r for r in runs if r.variant == row["technique"]],
                                          [r for r in runs if r.variant == best["technique"]])
        rows += suite_rows
    return rows


def ingredients(row: dict, rows: list[dict]) -> list[dict]:
    """The techniques a row combines: the other rows whose settings it all shares, when two or more of them
    together make up every setting it has; none for a single technique."""
    mine = row["overrides"]
    parts = [r for r in rows if r is not row and r["overrides"]
             and all(key in mine and mine[key] == value for key, value in r["overrides"].items())]
    covered = {key for r in parts for key in r["overrides"]}
    return parts if len(parts) >= 2 and covered == set(mine) else []


def _row(suite: str, variant: str, runs, base) -> dict:
    directions = [d for d in DIRECTIONS if all(d in r.per_query for r in runs + base)]
    parts = [100 * paired_differences(runs, base, d, k) for d in directions for k in RSUM_KS]
    comparable = all(p is not None for p in parts) and parts
    low, high = paired_bootstrap_sum(parts) if comparable else (float("nan"), float("nan"))
    delta = float(sum(p.mean() for p in parts)) if comparable else float("nan")
    latency = timing_delta(variant, "query_latency_s", runs, base)
    trainable = _relative(runs, base, lambda r: r.costs.get("trainable_params"))
    memory = _difference(runs, base, lambda r: r.costs.get("peak_rss_mb"))
    return {"suite": suite, "technique": variant, "reference": base[0].variant, "seeds": len(runs),
            "delta_rsum": delta, "low": low, "high": high,
            "significant": low > 0 or high < 0,
            "latency_rise": None if latency is None or latency.ratio is None else latency.ratio - 1.0,  # not judged: None
            "latency_worse": _slower(latency, runs, base), "trainable_rise": trainable,
            "peak_memory_delta_mb": memory, "overrides": runs[0].overrides, "reference_overrides": base[0].overrides,
            "derived": "derived" in runs[0].config,
            "adapter_bytes": runs[0].costs.get("adapter_bytes")}


def _slower(latency, runs, base) -> bool:
    """Does the query path's latency rise count? When compare calls it worse, or when it rose by the
    minimum timing effect with every run of the technique slower than every run of the reference
    (each run's p10): with 3 seeds a side the permutation test cannot reach p < 0.05 at all."""
    if latency is None or latency.ratio is None:
        return False
    if latency.mark == WORSE:
        return True
    mine, theirs = (relative_deciles(side, "query_latency_s") for side in (runs, base))
    if mine is None or theirs is None:  # as compare judges: over the machine reference when both sides timed it
        mine, theirs = (process_deciles(side, "query_latency_s") for side in (runs, base))
    return latency.ratio >= MIN_TIMING_EFFECT and min(mine) > max(theirs)


def _median(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _relative(runs, base, value) -> float | None:
    mine, theirs = _median(map(value, runs)), _median(map(value, base))
    return None if mine is None or not theirs else mine / theirs - 1.0


def _difference(runs, base, value) -> float | None:
    mine, theirs = _median(map(value, runs)), _median(map(value, base))
    return None if mine is None or theirs is None else mine - theirs


def priorities(rows: list[dict]) -> list[dict]:
    """The significant gains, highest priority first (see the module docstring for the rule)."""
    ranked = []
    for row in rows:
        if not (row["low"] > 0) or row.get("combines") or _is_changed_reference_s_base(row):
            continue
        latency = row["latency_rise"] if row["latency_worse"] else 0.0  # a rise within the machine's noise costs nothing
        cost = 1 + latency + max(row["trainable_rise"] or 0.0, 0.0)
        ranked.append({**row, "priority": row["low"] / cost})
    return sorted(ranked, key=lambda r: r["priority"], reverse=True)


def _is_changed_reference_s_base(row: dict) -> bool:
    """A variant that sets nothing, against a reference that sets something: the reference's change undone."""
    return not row["overrides"] and bool(row.get("reference_overrides"))


def combination(ranked: list[dict]) -> dict:
    """The overrides of the ranked techniques that combine, merged: see `combined`."""
    merged: dict = {}
    for row in combined(ranked):
        merged.update(row["overrides"])
    return merged


def combined(ranked: list[dict]) -> list[dict]:
    """The ranked techniques that go into the combination, in rank order, each whole or not at all.

    A technique joins when none of its keys touches a key of a higher-ranked one that joined
    (the same setting, or one inside the other: `model.head` and `model.head.blocks`, a `*`
    matching any tower); a technique measured against a reference that overrides the base itself
    never joins (a gain measured on other data, as day6_missing's, says nothing about the base), nor
    does a derived run (an ensemble, a soup): it combines trained models, it is not a setting.
    """
    taken: list[str] = []
    joined = []
    for row in ranked:
        clashes = any(_touch(key, other) for key in row["overrides"] for other in taken)
        if row.get("reference_overrides") or row.get("derived") or clashes:
            continue
        joined.append(row)
        taken += list(row["overrides"])
    return joined


# A tower's own setting that, unset, falls back to the model-wide one of the same name (model.audio.head → model.head)
FALLBACKS = {f.name for f in fields(TowerConfig)} & {f.name for f in fields(ModelConfig)}


def _touch(a: str, b: str) -> bool:
    """Do two dotted keys set the same thing, or one a part of the other? (`*` matches any one part; a
    tower's own head touches the model-wide head, which it overrides for that tower.)"""
    return any(_same_part(x, y) for x in _spellings(a) for y in _spellings(b))


def _same_part(a: str, b: str) -> bool:
    first, second = a.split("."), b.split(".")
    return all(x == y or "*" in (x, y) for x, y in zip(first, second))


def _spellings(key: str) -> list[str]:
    """The key, and for a tower's own fallback setting (model.<tower>.head…) the model-wide key it stands in for."""
    parts = key.split(".")
    if len(parts) >= 3 and parts[0] == "model" and parts[2] in FALLBACKS:
        return [key, ".".join(["model", *parts[2:]])]
    return [key]


@dataclass
class Section:
    """One part of the roadmap report, rendered as markdown or HTML alike."""
    title: str
    text: str = ""
    table: pd.DataFrame | None = None
    code: str = ""  # a TOML snippet
    fronts: list[dict] = field(default_factory=list)  # the technique rows whose Pareto fronts the HTML page plots


TITLE = "The roadmap: every technique against its reference"
INTRO = ("Δ in points over the same test queries and seeds (95% paired bootstrap interval). Costs are relative to the "
         "suite's reference: query latency p50, trainable parameters; peak memory as a difference. "
         f"{HARD_NEGATIVE_COLUMN}: R@1 over the queries whose item has a known hard negative in the test split, mean "
         "of the directions.")


def roadmap_sections(records) -> list[Section]:
    """Every technique's row per suite, all techniques side by side, the measured combinations, the Pareto fronts,
    the significance-ranked next steps and the combination to run; none without a suite that has a reference."""
    rows = technique_rows(records)
    if not rows:
        return []
    sections = []
    for suite in dict.fromkeys(r["suite"] for r in rows):
        suite_records = [r for r in records if r.suite == suite]
        sections.append(Section(f"{suite} (reference `{reference_of(suite_records)}`)", suite_run_time(suite_records),
                                table=technique_frame(suite_records)))
    sections.append(Section("All techniques", table=pd.DataFrame([
        {"suite": r["suite"], "technique": r["technique"],
         "Δ rsum": f"{r['delta_rsum']:+.1f} [{r['low']:+.1f}, {r['high']:+.1f}]", "verdict": _verdict(r),
         "query latency": _latency(r), "trainable params": _percent(r["trainable_rise"]),
         "peak memory": _mib(r["peak_memory_delta_mb"])}
        for r in sorted(rows, key=_gain_first)])))
    measured = [r for r in rows if r.get("combines")]
    if measured:
        sections.append(Section("Combinations, measured", "Each variant whose settings are those of two or more "
                                "techniques of its suite together, against the reference and against its best "
                                "ingredient (the highest Δ rsum), paired over the same queries and seeds.",
                                _combination_frame(measured)))
    sections.append(Section("Pareto fronts", "Each technique at (Δ rsum, its cost against the reference), the "
                            "reference at (0, 0): the techniques on a front are those no other beats on both. Costs "
                            "as measured, including rises the next steps count as noise (n.s.).",
                            fronts_frame(rows), fronts=rows))
    sections.append(_next_steps(rows, measured))
    return sections


def _gain_first(row: dict) -> float:
    """Sort key: the largest Δ rsum first, an incomparable one (NaN) last."""
    return -row["delta_rsum"] if row["delta_rsum"] == row["delta_rsum"] else float("inf")


def _next_steps(rows: list[dict], measured: list[dict]) -> Section:
    ranked = priorities(rows)
    if not ranked:
        return Section("Next steps", f"Rule: {RULE}. No technique gained significantly over its reference: nothing "
                                     "to combine.")
    table = pd.DataFrame([{"rank": i + 1, "technique": f"{r['suite']}/{r['technique']}",
                           "priority": f"{r['priority']:.2f}", "Δ rsum": f"{r['delta_rsum']:+.1f}"}
                          for i, r in enumerate(ranked)])
    merged = combination(ranked)
    names = ", ".join(f"`{r['technique']}`" for r in combined(ranked))
    run = [r["technique"] for r in measured if r["overrides"] == merged]
    status = f" (measured above as `{run[0]}`)" if run else ""
    text = (f"Rule: {RULE}.\n\nThe combination to run next{status}: {names} — each ranked technique in rank "
            "order, whole, unless one of its settings touches a setting of a higher-ranked one already in (the same "
            "key, or one inside the other); derived runs (ensembles, soups) and techniques whose reference overrides the "
            "base themselves are ranked, not combined. As a variant of a suite on the same base, below the ranking.")
    code = "[variants.combined]\n" + "\n".join(f'"{k}" = {_toml(v)}' for k, v in merged.items())
    return Section("Next steps", text, table, code)


def render_roadmap(records) -> str:
    """Markdown: the roadmap's sections."""
    sections = roadmap_sections(records)
    if not sections:
        return "_no suite with a reference variant among these records_\n"
    parts = [f"# {TITLE}\n", INTRO + "\n"]
    for section in sections:
        parts.append(f"## {section.title}\n")
        if section.text:
            parts.append(section.text + "\n")
        if section.table is not None:
            parts.append(section.table.to_markdown(index=False) + "\n")
        if section.code:
            parts.append(f"```toml\n{section.code}\n```\n")
    return "\n".join(parts)


def _combination_frame(measured: list[dict]) -> pd.DataFrame:
    def delta(row):
        return f"{row['delta_rsum']:+.1f} [{row['low']:+.1f}, {row['high']:+.1f}] {_verdict(row)}"

    return pd.DataFrame([{"suite": r["suite"], "variant": r["technique"],
                          "combines": ", ".join(r["combines"]), "Δ rsum vs reference": delta(r),
                          "best ingredient": r["best_ingredient"],
                          "Δ rsum vs best ingredient": delta(r["versus_best"]),
                          "query latency": _latency(r), "trainable params": _percent(r["trainable_rise"]),
                          "peak memory": _mib(r["peak_memory_delta_mb"])} for r in measured])


def _verdict(row: dict) -> str:
    if np.isnan(row["low"]):
        return "not comparable"
    return "better" if row["low"] > 0 else "worse" if row["high"] < 0 else "not significant"


def _latency(row: dict) -> str:
    """The query latency's relative rise, "(n.s.)" when it does not count (see `_slower`)."""
    counted = row["latency_worse"] or row["latency_rise"] is None
    return _percent(row["latency_rise"]) + ("" if counted else " (n.s.)")


def _percent(value) -> str:
    return "–" if value is None else f"{100 * value:+.0f}%"


def _mib(value) -> str:
    return "–" if value is None else f"{value:+.0f} MiB"


def _toml(value) -> str:
    import json

    if isinstance(value, dict):
        keys = {k: k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k) for k in value}
        return "{ " + ", ".join(f"{keys[k]} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)
