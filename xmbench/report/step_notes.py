"""What techniques wrote in the step log: a table of every numeric step note, per variant.

Callbacks and samplers leave their measurements in each step's `notes` (mining recall against
chance, the fp16 loss scale, overflow steps, each tower's largest activation, adaptive pair
weights, unfrozen layers…). A report reader needs them next to the quality table, not inside
the JSON. For every successful run, each numeric note is followed over the steps that carry
it: its first and last value, its mean over those steps, its smallest and largest. A dict of
numbers becomes one note per key (`stability/max_activation/tower/image`, `pair_rows/image-audio`);
a flag counts as 0/1 (its mean: the share of steps it was set); anything else (lists, strings,
summaries of dicts) is left to the records. A variant's row averages its seeds' first, last and
mean values and spans their extremes.
"""
from __future__ import annotations

import math
from numbers import Number

import pandas as pd


def numeric_notes(notes: dict) -> dict[str, float]:
    """The step's notes that are numbers, dicts of numbers flattened one level (`key/inner`)."""
    flat: dict[str, float] = {}
    for key, value in notes.items():
        if isinstance(value, dict):
            flat.update({f"{key}/{inner}": float(v) for inner, v in value.items() if _is_number(v)})
        elif _is_number(value):
            flat[key] = float(value)
    return flat


def _is_number(value) -> bool:
    return isinstance(value, Number) and not isinstance(value, complex) and math.isfinite(float(value))


def run_notes(record) -> dict[str, dict[str, float]]:
    """note → {first, last, mean, min, max, steps} over the run's steps that carry the note."""
    series: dict[str, list[float]] = {}
    for step in record.steps or []:
        for key, value in numeric_notes(step.get("notes") or {}).items():
            series.setdefault(key, []).append(value)
    return {key: {"first": values[0], "last": values[-1], "mean": sum(values) / len(values), "min": min(values),
                  "max": max(values), "steps": len(values)} for key, values in series.items()}


def step_notes_frame(records) -> pd.DataFrame:
    """One row per variant × note: seeds, first, last and mean value (means over the seeds), min and max over all steps."""
    rows = []
    variants: dict[str, list] = {}
    for record in records:
        if record.ok:
            variants.setdefault(record.variant, []).append(run_notes(record))
    for variant, runs in variants.items():
        for key in sorted({k for run in runs for k in run}):
            stats = [run[key] for run in runs if key in run]
            rows.append({"variant": variant, "note": key, "seeds": len(stats),
                         "first": sum(s["first"] for s in stats) / len(stats),
                         "last": sum(s["last"] for s in stats) / len(stats),
                         "mean": sum(s["mean"] for s in stats) / len(stats),
                         "min": min(s["min"] for s in stats), "max": max(s["max"] for s in stats)})
    return pd.DataFrame(rows)


def step_notes_table(records) -> str:
    """The markdown section, empty when no run left a numeric note."""
    frame = step_notes_frame(records)
    if frame.empty:
        return ""
    shown = frame.assign(**{c: frame[c].map(_number) for c in ("first", "last", "mean", "min", "max")})
    return ("Step notes: what the techniques measured during training (first and last value and the mean over "
            "the steps that carried the note, each averaged over the seeds; min and max over every such step).\n\n"
            + shown.to_markdown(index=False) + "\n")


def _number(value: float) -> str:
    """Whole numbers whole (a loss scale of 65536, not 6.554e+04), others to 4 significant digits."""
    return f"{int(value)}" if float(value).is_integer() and abs(value) < 1e15 else f"{value:.4g}"
