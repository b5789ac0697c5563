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
from xmbench.report.tuning import chosen_cell, point_label, searches
from xmbench.tuning import TUNED_SUFFIX

RULE = ("priority = lower 95% bound of Δ rsum ÷ (1 + relative query-latency rise + relative trainable-parameter "
        "rise); only techniques whose Δ rsum interval lies above 0 are ranked, and a latency rise counts only when "
        "it is ≥ 5% with every run of the technique slower than every run of the reference (each run's p10), or "
        "the timing comparison finds it significant; n.s. otherwise. A suite's base itself, measured against a "
        "reference that changes it (day6_missing's complete data against its missing data), is not ranked: it shows "
        "what the reference's change costs, it is no step to take")


def technique_rows(records) -> list[dict]:
    """Per suite with a reference, per other variant: Δ rsum and its interval, and the relative cost changes.

    Each variant is measured against the reference its records name: a tuned run ([tune]) against the
    tuned reference; its row carries the chosen point (`tuned`), and its overrides are the technique's
    own, without the tuned axes (each technique's lr is its own, not a setting to combine).
    """
    rows = []
    for suite in dict.fromkeys(r.suite for r in records):
        runs = [r for r in records if r.suite == suite and r.ok]
        reference = reference_of(runs)
        if not reference or not any(r.variant == reference for r in runs):
            continue
        found = searches(runs)
        suite_rows = []
        for variant in dict.fromkeys(r.variant for r in runs if r.variant != reference):
            mine = [r for r in runs if r.variant == variant]
            base = [r for r in runs if r.variant == mine[0].reference]
            if not base or mine[0].reference == variant:
                continue
            row = _row(suite, variant, mine, base)
            if base[0].variant in found:  # the tuned reference: its chosen point is no change of the base
                chosen = found[base[0].variant]["chosen"]
                row["reference_overrides"] = {k: v for k, v in row["reference_overrides"].items() if k not in chosen}
            if variant in found:
                row["tuned"] = found[variant]
                row["overrides"] = {k: v for k, v in row["overrides"].items() if k not in found[variant]["chosen"]}
                row["untuned"] = variant.removesuffix(TUNED_SUFFIX) if variant.endswith(TUNED_SUFFIX) else None
            suite_rows.append(row)
        start = reference_point(suite_rows)  # a combination may start at the tuned reference's point
        for row in suite_rows:
            parts = ingredients(row, suite_rows, start)
            if parts:  # a combination is measured against its best ingredient too, and not ranked as a technique
                best = max(parts, key=lambda r: r["delta_rsum"])
                row["combines"], row["best_ingredient"] = [r["technique"] for r in parts], best["technique"]
                row["versus_best"] = _row(suite, row["technique"], [r for r in runs if r.variant == row["technique"]],
                                          [r for r in runs if r.variant == best["technique"]])
        rows += suite_rows
    return rows


def ingredients(row: dict, rows: list[dict], start: dict | None = None) -> list[dict]:
    """The techniques a row combines: the other rows whose settings it all shares, when two or more of them
    together make up every setting it has beyond `start` (the tuned reference's point, where the next steps
    start a combination); none for a single technique."""
    start = start or {}
    mine = {key: value for key, value in row["overrides"].items() if key not in start or start[key] != value}
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
    """The significant gains, highest priority first (see the module docstring for the rule); a technique
    tuned ([tune]) is ranked by its verdict at its own best, against the tuned reference."""
    ranked = []
    tuned = {(r["suite"], r["untuned"]) for r in rows if r.get("untuned")}
    for row in rows:
        if (row["suite"], row["technique"]) in tuned or _is_tuned_reference(row, rows):
            continue  # its tuned row speaks for it; the reference tuned is the tuned runs' reference, not a step
        if not (row["low"] > 0) or row.get("combines") or _is_changed_reference_s_base(row):
            continue
        latency = row["latency_rise"] if row["latency_worse"] else 0.0  # a rise within the machine's noise costs nothing
        cost = 1 + latency + max(row["trainable_rise"] or 0.0, 0.0)
        ranked.append({**row, "priority": row["low"] / cost})
    return sorted(ranked, key=lambda r: r["priority"], reverse=True)


def _is_tuned_reference(row: dict, rows: list[dict]) -> bool:
    """The reference at its own best: the runs the other tuned techniques are measured against."""
    return bool(row.get("untuned")) and row["untuned"] == row["reference"]


def _is_changed_reference_s_base(row: dict) -> bool:
    """A variant that sets nothing, against a reference that sets something: the reference's change undone."""
    return not row["overrides"] and bool(row.get("reference_overrides"))


def combination(ranked: list[dict], start: dict | None = None) -> dict:
    """The overrides of the ranked techniques that combine, merged over `start` (the tuned reference's point):
    see `combined`."""
    merged: dict = dict(start or {})
    for row in combined(ranked, start):
        merged.update(row["overrides"])
    return merged


def reference_point(rows: list[dict]) -> dict:
    """The point the tuned reference chose ([tune]): where a combination of tuned techniques starts."""
    for row in rows:
        if _is_tuned_reference(row, rows):
            return dict(row["tuned"]["chosen"])
    return {}


def combined(ranked: list[dict], start: dict | None = None) -> list[dict]:
    """The ranked techniques that go into the combination, in rank order, each whole or not at all.

    A technique joins when none of its keys touches a key of a higher-ranked one that joined
    (the same setting, or one inside the other: `model.head` and `model.head.blocks`, a `*`
    matching any tower); a technique measured against a reference that overrides the base itself
    never joins (a gain measured on other data, as day6_missing's, says nothing about the base), nor
    does a derived run (an ensemble, a soup): it combines trained models, it is not a setting.
    """
    taken: list[str] = list(start or {})  # the tuned reference's own settings are taken first
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
         **({"against": r["reference"]} if any(row.get("tuned") for row in rows) else {}),
         "Δ rsum": f"{r['delta_rsum']:+.1f} [{r['low']:+.1f}, {r['high']:+.1f}]", "verdict": _verdict(r),
         "query latency": _latency(r), "trainable params": _percent(r["trainable_rise"]),
         "peak memory": _mib(r["peak_memory_delta_mb"])}
        for r in sorted(rows, key=_gain_first)])))
    tuned = tuned_section(rows)
    if tuned:
        sections.append(tuned)
    adalora = adalora_section(records, rows)
    if adalora:
        sections.append(adalora)
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


def tuned_pairs(rows: list[dict]) -> list[dict]:
    """Each tuned technique with its two verdicts: at the reference's settings (its untuned row, against the
    reference) and at its own best (its tuned row, against the tuned reference); the reference's own pair is
    its tuned runs against its untuned ones."""
    by = {(r["suite"], r["technique"]): r for r in rows}
    return [{"suite": r["suite"], "technique": r["untuned"], "tuned": r, "untuned": by.get((r["suite"], r["untuned"])),
             "is_reference": _is_tuned_reference(r, rows)} for r in rows if r.get("untuned")]


def verdict_changed(pair: dict) -> bool:
    """Did tuning change the verdict's sign or its significance (better / worse / not significant)?"""
    before, after = pair["untuned"], pair["tuned"]
    if before is None:
        return False
    return _verdict(before) != _verdict(after) or np.sign(before["delta_rsum"]) != np.sign(after["delta_rsum"])


def tuned_section(rows: list[dict]) -> Section | None:
    """Both verdicts per tuned technique, its chosen point, and how many verdicts tuning changed."""
    pairs = tuned_pairs(rows)
    if not pairs:
        return None
    techniques = [p for p in pairs if not p["is_reference"]]
    changed = [p for p in techniques if verdict_changed(p)]
    reference = next((p for p in pairs if p["is_reference"]), None)
    search = pairs[0]["tuned"]["tuned"]
    untuned_reference = reference["technique"] if reference else pairs[0]["tuned"]["reference"]
    names = ", ".join(f"`{p['technique']}`" for p in changed)
    text = (f"Each technique at the reference's settings (Δ against `{untuned_reference}`, "
            f"the column of the tables above) and at its own best (Δ against the reference tuned the same way), "
            f"its point chosen by the best {search['split']} {search['metric']} over seed "
            f"{', '.join(map(str, search['seeds']))}; the test split, on which both verdicts are computed, is never "
            f"evaluated by the search. **{len(changed)} of {len(techniques)} verdicts changed sign or significance**"
            + (f": {names}." if changed else "."))
    if reference:
        text += (f"\n\nThe reference at its own best (`{reference['tuned']['technique']}`, "
                 f"{chosen_cell(reference['tuned']['tuned'])}) against itself at the suite's settings: "
                 f"Δ rsum {_delta_cell(reference['tuned'])}.")
    flagged = [p for p in pairs if p["tuned"]["tuned"].get("edges")]
    if flagged:
        text += ("\n\nChosen at the edge of the grid (the best may lie beyond it: widen the grid): "
                 + "; ".join(f"`{p['technique']}`: {', '.join(p['tuned']['tuned']['edges'])}" for p in flagged) + ".")
    table = pd.DataFrame([{"suite": p["suite"], "technique": p["technique"] + (" (reference)" if p["is_reference"] else ""),
                           "chosen": chosen_cell(p["tuned"]["tuned"]),
                           "Δ rsum at the reference's settings": _delta_cell(p["untuned"]) if p["untuned"] else "—",
                           "Δ rsum at its own best": _delta_cell(p["tuned"]),
                           "changed": _change(p)} for p in pairs])
    return Section("Each technique at its own best ([tune])", text, table)


def _delta_cell(row: dict) -> str:
    return f"{row['delta_rsum']:+.1f} [{row['low']:+.1f}, {row['high']:+.1f}] {_verdict(row)}"


def _change(pair: dict) -> str:
    if pair["is_reference"] or pair["untuned"] is None:
        return "—"
    if not verdict_changed(pair):
        return "no"
    return f"{_verdict(pair['untuned'])} → {_verdict(pair['tuned'])}"


def adalora_section(records, rows: list[dict]) -> Section | None:
    """Where AdaLoRA's budget went (rank per layer at the end of each run: off init_r, off a uniform split) and
    what it gains or loses against the reference, at the reference's settings and at its own best."""
    runs = [r for r in records if r.ok and any("layers_off_init_r" in s for s in r.profile.get("adapters", {}).values())]
    if not runs:
        return None
    table = []
    for variant in dict.fromkeys(r.variant for r in runs):
        mine = [r for r in runs if r.variant == variant]
        for tower in sorted(mine[0].profile["adapters"]):
            stats = [r.profile["adapters"][tower] for r in mine]
            layers = len(stats[0]["ranks"])
            table.append({"variant": variant, "tower": tower, "seeds": len(stats),
                          "schedule (steps)": "tinit {tinit}, tfinal {tfinal}, every {delta_t}".format(
                              **stats[0]["schedule_steps"]),
                          "init_r → target_r": f"{stats[0]['init_r']} → {stats[0]['target_r']}",
                          "rank per layer at the end (min–max)": f"{min(s['rank_min'] for s in stats)}–"
                                                                 f"{max(s['rank_max'] for s in stats)}",
                          "layers off init_r": f"{min(s['layers_off_init_r'] for s in stats)}–"
                                               f"{max(s['layers_off_init_r'] for s in stats)} of {layers}",
                          "layers off a uniform split": f"{min(s['layers_off_uniform'] for s in stats)}–"
                                                        f"{max(s['layers_off_uniform'] for s in stats)} of {layers}"})
    verdicts = [f"`{r['technique']}` ({chosen_cell(r['tuned']) if r.get('tuned') else 'the reference settings'}) "
                f"against `{r['reference']}`: Δ rsum {_delta_cell(r)}"
                for r in rows if r["technique"] in {t["variant"] for t in table}]
    text = ("AdaLoRA re-allocates a rank budget by importance while it trains (its paper's schedule: warm-up, "
            "cubic pruning every few steps, a final phase at the pattern). Ranges over seeds; a uniform split is "
            "every layer at the mean rank of its tower. " + ("; ".join(verdicts) + "." if verdicts else ""))
    return Section("AdaLoRA: where the rank went", text, pd.DataFrame(table))


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
    start = reference_point(rows)
    merged = combination(ranked, start)
    names = ", ".join(f"`{r['technique']}`" for r in combined(ranked, start))
    if start:
        names = f"the tuned reference's {point_label(start)}, " + names
    at_own_best = {key: value for key, value in merged.items() if key not in start}  # a tuned run's settings
    run = [r["technique"] for r in measured
           if r["overrides"] == merged or (r.get("tuned") and r["overrides"] == at_own_best)]
    status = f" (measured above as {', '.join(f'`{name}`' for name in run)})" if run else ""
    text = (f"Rule: {RULE}.\n\nThe combination to run next{status}: {names} — each ranked technique in rank "
            "order, whole, unless one of its settings touches a setting of a higher-ranked one already in (the same "
            "key, or one inside the other); derived runs (ensembles, soups) and techniques whose reference overrides the "
            "base themselves are ranked, not combined. As a variant of a suite on the same base, below the ranking."
            + (" Tuned techniques are ranked by their verdict at their own best against the tuned reference; their own "
               "learning rates are not combined: the combination starts at the tuned reference's point, and tuned "
               "itself (name it in the suite's [tune] variants) it is compared at its own best." if start else ""))
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
