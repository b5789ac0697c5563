"""What a tuned suite chose ([tune]): the chosen point beside each verdict, a compact search table per
tuned variant, the search's run time, and the validation score against the axis for the HTML page.

Everything here is read from the tuned records' `tuning` field (xmbench.bench.tune), which holds the
search as it was when the run was chosen: the points, their validation scores, the choice, its cost.
"""
from __future__ import annotations

import pandas as pd

from xmbench.bench.record import Record


def searches(records: list[Record]) -> dict[str, dict]:
    """Tuned variant → its search (the first record of the variant that carries one)."""
    found: dict[str, dict] = {}
    for record in records:
        if record.tuning and record.tuning.get("chosen") is not None:
            found.setdefault(record.variant, record.tuning)
    return found


def point_label(values: dict) -> str:
    return ", ".join(f"{axis}={_value(v)}" for axis, v in values.items())


def chosen_cell(search: dict) -> str:
    """The chosen point, flagged when it lies at the edge of the grid."""
    return point_label(search["chosen"]) + (" ⚠ grid edge" if search.get("edges") else "")


def search_cost_s(records: list[Record]) -> float:
    """The run time of the searches behind these records (each search once)."""
    return sum(s.get("cost_s") or 0.0 for s in searches(records).values())


def search_runs(records: list[Record]) -> int:
    return sum(len(s["points"]) * len(s["seeds"]) for s in searches(records).values())


def search_frame(search: dict) -> pd.DataFrame:
    """One tuned variant's search, compact: a column per point, the validation score below it (the choice in bold)."""
    header = " ".join(search["axes"])
    cells = {}
    for index, point in enumerate(search["points"]):
        label = ", ".join(_value(v) for v in point["values"].values())
        score = "failed" if point["score"] is None else f"{point['score']:.1f}"
        cells[label] = f"**{score}**" if index == search["index"] else score
    return pd.DataFrame([{header: f"{search['split']} {search['metric']}", **cells}])


def tuning_section(records: list[Record]) -> str:
    """Markdown: what each tuned variant chose, on what, at what cost, and each search's table."""
    found = searches(records)
    if not found:
        return ""
    any_search = next(iter(found.values()))
    seeds = ", ".join(str(s) for s in any_search["seeds"])
    parts = [f"Tuning ([tune]): each tuned variant's point chosen by the best mean {any_search['split']} "
             f"{any_search['metric']} over seed {seeds} (the verdicts above are on the test split, which the search "
             f"never evaluates); searched in {search_runs(records)} runs, "
             f"{search_cost_s(records) / 60:.1f} min (records under `{any_search.get('search_suite')}`).\n"]
    for variant, search in found.items():
        cost = f"{search['cost_s'] / 60:.1f} min"
        parts.append(f"`{variant}`: chose {point_label(search['chosen'])} ({cost})"
                     + "".join(f" — **{flag}**" for flag in search.get("edges", [])) + "\n")
        parts.append(search_frame(search).to_markdown(index=False) + "\n")
    return "\n".join(parts)


def curve_points(search: dict) -> tuple[list[float], list[float | None]] | None:
    """(axis values, validation scores) of a one-axis numeric search, for a plot; None otherwise."""
    if len(search["axes"]) != 1:
        return None
    values = [p["values"][search["axes"][0]] for p in search["points"]]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return None
    return values, [p["score"] for p in search["points"]]


def _value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
