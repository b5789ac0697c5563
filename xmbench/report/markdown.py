"""GitHub-flavoured markdown tables of stored records (pandas + tabulate)."""
from __future__ import annotations

import pandas as pd

from xmbench.bench.record import Record
from xmbench.config import DIRECTIONS
from xmbench.report.frame import COSTS, QUALITY, records_frame
from xmbench.report.ingredients import ingredient_table
from xmbench.report.profile import has_profile, render_record_profile
from xmbench.report.step_notes import step_notes_table
from xmbench.report.techniques import technique_table
from xmbench.report.tuning import search_cost_s, search_runs, tuning_section


def _mean_std(values: pd.Series, scale: float, digits: int) -> str:
    values = values.dropna() * scale
    if values.empty:
        return "–"
    if len(values) == 1:
        return f"{values.iloc[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def quality_table_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per variant; R@k and mAP in percent per direction, mean ± std over seeds."""
    ok = frame[frame.status == "ok"]
    if ok.empty:
        return pd.DataFrame()
    columns = [f"{d} {m}" for d in DIRECTIONS for m in QUALITY if f"{d} {m}" in ok]
    rows = []
    for variant, group in ok.groupby("variant", sort=False):
        row = {"variant": variant, "seeds": len(group)}
        row.update({c: _mean_std(group[c], 100.0, 1) for c in columns})
        row["rsum"] = _mean_std(group["rsum"], 1.0, 1) if "rsum" in group else "–"
        rows.append(row)
    return pd.DataFrame(rows)


def quality_table(frame: pd.DataFrame) -> str:
    table = quality_table_frame(frame)
    return table.to_markdown(index=False) if len(table) else "_no successful runs_"


def cost_table_frame(frame: pd.DataFrame) -> pd.DataFrame:
    ok = frame[frame.status == "ok"]
    rows = []
    for variant, group in ok.groupby("variant", sort=False):
        row = {"variant": variant}
        for cost in COSTS:
            if cost in group:
                digits = 0 if cost.endswith(("params", "bytes")) else 3 if cost in ("step_time_s", "query_latency_ms") else 1
                row[cost] = _mean_std(group[cost], 1.0, digits)
        rows.append(row)
    return pd.DataFrame(rows)


def cost_table(frame: pd.DataFrame) -> str:
    table = cost_table_frame(frame)
    return table.to_markdown(index=False) if len(table) else ""


def render_markdown(records: list[Record]) -> str:
    """A section per suite: quality table, cost table, and the failed variants with reasons."""
    if not records:
        return "_no records_\n"
    frame = records_frame(records)
    parts = []
    for suite, group in frame.groupby("suite", sort=False):
        parts.append(f"## {suite}\n")
        run_time = suite_run_time([r for r in records if r.suite == suite])
        if run_time:
            parts.append(run_time + "\n")
        parts.append("Retrieval on the evaluation split, in percent (mean ± std over seeds); rsum = sum of "
                     "R@1/5/10 over directions.\n")
        parts.append(quality_table(group) + "\n")
        parts.append("Costs: adaptation run (median step time; peak RSS while training) and the online query "
                     "path (p50 of encoding one query, scoring it against the gallery, top-10).\n")
        parts.append(cost_table(group) + "\n")
        techniques = technique_table([r for r in records if r.suite == suite])
        if techniques:
            parts.append(techniques)
        ingredients = ingredient_table([r for r in records if r.suite == suite])
        if ingredients:
            parts.append(ingredients)
        tuning = tuning_section([r for r in records if r.suite == suite])
        if tuning:
            parts.append(tuning)
        notes = step_notes_table([r for r in records if r.suite == suite])
        if notes:
            parts.append(notes)
        failed = group[group.status != "ok"]
        if len(failed):
            parts.append("Failed runs:\n")
            parts.extend(f"- `{r.variant}` seed {r.seed}: {str(r.error).splitlines()[0]}" for r in failed.itertuples())
            parts.append("")
        profiled = [r for r in records if r.suite == suite and r.ok and has_profile(r)]
        parts.extend(render_record_profile(r) for r in profiled)
    return "\n".join(parts) + "\n"


def suite_run_time(records: list[Record]) -> str:
    """The suite's measured run time: the sum of its runs' own wall times (runs that recorded one)."""
    runs = {(r.variant_id, r.seed, r.created_at): r for r in records}.values()  # a run filed twice ([tune]) once
    timed = [r.costs["run_wall_s"] for r in runs if r.ok and r.costs.get("run_wall_s") is not None]
    if not timed:
        return ""
    untimed = sum(1 for r in runs if r.ok) - len(timed)
    note = f" ({untimed} more {_runs(untimed)} recorded no run time)" if untimed else ""
    searched = search_cost_s(records)
    search = (f"; and {searched / 60:.1f} min for the {search_runs(records)} search runs of [tune] (their validation "
              f"runs; in all {(sum(timed) + searched) / 60:.1f} min)") if searched else ""
    return (f"Run time: {sum(timed) / 60:.1f} min for {len(timed)} {_runs(len(timed))}, one after another on this machine "
            f"(sum of each run's wall time: data, model, training, evaluation, profile){note}{search}.")


def _runs(n: int) -> str:
    return "run" if n == 1 else "runs"


def _fmt(value: float | None, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "quality":
        return f"{value:.2f}"
    if kind == "timing":
        return f"{value * 1e3:.3f} ms"
    return f"{value:,.0f}"


def comparison_table(deltas, everything: bool = False) -> str:
    """Rows per variant × metric with a mark; by default only rows that changed or need a look."""
    from xmbench.bench.compare import EQUAL, MARKS, NOT_JUDGED, SAME

    shown = [d for d in deltas if everything or d.mark not in (SAME, EQUAL) or d.note.startswith(NOT_JUDGED)]
    rows = [{"mark": MARKS[d.mark], "variant": d.variant, "metric": d.metric, "baseline": _fmt(d.baseline, d.kind),
             "current": _fmt(d.current, d.kind),
             "change": "–" if d.delta is None else (f"{d.delta:+.2f}" if d.kind == "quality" else f"×{d.ratio:.3f}"
                                                    if d.ratio is not None else f"{d.delta:+,.0f}"),
             "95% interval": f"[{d.interval[0]:+.2f}, {d.interval[1]:+.2f}]" if d.interval else "",
             "result": d.mark, "note": d.note} for d in shown]
    hidden = len(deltas) - len(shown)
    legend = ("Marks: `+` better, `-` worse, `~` not significant, `=` equal, `!` new failure, `*` fixed, "
              "`x` incomparable (config changed), `n` new variant. Quality in percentage points.")
    table = pd.DataFrame(rows).to_markdown(index=False) if rows else "_no significant changes_"
    tail = f"\n\n{hidden} more rows unchanged (not significant or equal)." if hidden else ""
    return f"{table}{tail}\n\n{legend}\n"


def verdict_markdown(verdict, deltas, suite: str, header: dict) -> str:
    """The gate's answer, fit for a pull-request comment or $GITHUB_STEP_SUMMARY."""
    status = "passed ✅" if verdict.passed else f"FAILED ❌ ({len(verdict.violations)} violations)"
    lines = [f"### xmbench gate: suite `{suite}` {status}", "",
             f"Baseline: commit `{str(header.get('commit'))[:12]}` on `{header.get('machine_class')}`, "
             f"{verdict.checked} comparisons.", ""]
    if verdict.violations:
        lines += ["| variant | rule | why |", "|---|---|---|"]
        lines += [f"| {v.variant} | `{v.rule}` | {v.reason} |" for v in verdict.violations]
        lines.append("")
    lines.append(comparison_table(deltas))
    return "\n".join(lines)
