"""From entries to what trends and steps need: commits in order, a value per commit, and Records.

Commits are ordered along the git history of the repo (`git rev-list --topo-order HEAD`): entries
of commits that are not ancestors of HEAD (another branch) are left out of the series. Without a
git repo (a history folder checked out on its own), entries are ordered by commit date.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xmbench.bench.compare import EXACT_COST_PREFIXES, EXACT_COSTS, MACHINE_REFERENCE, QUALITY_METRICS, is_timing
from xmbench.bench.record import Record
from xmbench.bench.stats import mean_interval
from xmbench.config import DIRECTIONS
from xmbench.errors import XmbenchError
from xmbench.history.store import Entry, git

HISTORY_ID = "history"  # every entry's Record gets this variant id: a history compares a variant with itself over time


@dataclass(frozen=True)
class Point:
    """One commit's value of one metric: the centre and the spread shown around it."""

    commit: str
    subject: str
    date: str
    value: float
    low: float
    high: float
    seeds: int


def ordered(entries: list[Entry], repo: Path | str | None = ".") -> list[Entry]:
    """Clean entries in commit order (oldest first); dirty ones never enter a series."""
    clean = [e for e in entries if not e.dirty]
    try:
        order = git(repo, "rev-list", "--topo-order", "--reverse", "HEAD").split() if repo is not None else None
    except XmbenchError:
        order = None
    if not order:
        return sorted(clean, key=lambda e: e.date)
    position = {sha: i for i, sha in enumerate(order)}
    return sorted((e for e in clean if e.commit in position), key=lambda e: position[e.commit])


def variants(entries: list[Entry]) -> list[str]:
    return list(dict.fromkeys(e.variant for e in entries))


def metric_names(entries: list[Entry]) -> list[str]:
    """Quality per direction, rsum, timings, then deterministic costs: those any ok run holds."""
    runs = [r for e in entries for r in e.runs if r["status"] == "ok"]
    directions = [d for d in DIRECTIONS if any(d in r.get("metrics", {}) for r in runs)]
    quality = [f"{d} {m}" for d in directions for m in QUALITY_METRICS]
    rsum = ["rsum"] if any("rsum" in r.get("metrics", {}) for r in runs) else []
    timings = sorted({n for r in runs for n in r.get("timings", {}) if is_timing(n) and n != MACHINE_REFERENCE})
    costs = sorted({n for r in runs for n in r.get("costs", {}) if n in EXACT_COSTS or n.startswith(EXACT_COST_PREFIXES)})
    return quality + rsum + timings + costs


def normalise_metric(metric: str) -> str:
    """'t2i.R@1' (a gate rule's spelling) → 't2i R@1' (compare's); other names unchanged."""
    head, dot, tail = metric.partition(".")
    return f"{head} {tail}" if dot and (head in DIRECTIONS or head == "*") else metric


def kind_of(metric: str) -> str:
    """quality | timing | cost, as compare's deltas name their kinds."""
    if is_timing(metric):
        return "timing"
    return "quality" if metric == "rsum" or " " in metric else "cost"


def run_values(entry: Entry, metric: str) -> list[float]:
    """The metric in each ok seed of the entry: quality in points, timings as each process's p10 (s)."""
    values = []
    for run in (r for r in entry.runs if r["status"] == "ok"):
        if metric == "rsum":
            value = run["metrics"].get("rsum")
        elif kind_of(metric) == "quality":
            direction, _, name = metric.partition(" ")
            value = run["metrics"].get(direction, {}).get(name)
            value = None if value is None else 100 * value
        elif kind_of(metric) == "timing":
            value = run.get("timings", {}).get(metric, {}).get("p10")
        else:
            value = run.get("costs", {}).get(metric)
        if value is not None:
            values.append(float(value))
    return values


def point(entry: Entry, metric: str) -> Point | None:
    """Quality: the seeds' mean and 95% t interval; timings: the median of the processes' p10s and their
    range; costs: the value. None when no seed of the entry measured the metric."""
    values = run_values(entry, metric)
    if not values:
        return None
    kind = kind_of(metric)
    if kind == "quality":
        centre, low, high = mean_interval(values)
    elif kind == "timing":
        centre, low, high = float(math.exp(np.median(np.log(values)))), min(values), max(values)
    else:
        centre = low = high = values[0]
    return Point(entry.commit, entry.subject, entry.date, centre, low, high, len(values))


def series(entries: list[Entry], metric: str) -> tuple[list[Point], list[Entry]]:
    """The points of one variant's ordered entries, and the entries they came from (same length)."""
    pairs = [(p, e) for e in entries if (p := point(e, metric)) is not None]
    return [p for p, _ in pairs], [e for _, e in pairs]


def to_records(entries: list[Entry]) -> list[Record]:
    """Records that compare can judge: one per ok or failed seed of each entry.

    A timing's samples are the entry's p10 alone: with at least compare.MIN_PROCESSES seeds a side,
    compare judges each process by its p10, so the verdict is the one the full samples would give;
    with fewer it falls back to Mann-Whitney, here over the p10s.
    """
    records = []
    for entry in entries:
        for run in entry.runs:
            ok = run["status"] == "ok"
            records.append(Record(
                entry.suite, entry.variant, HISTORY_ID, run["seed"], run["status"], config={},
                error=run.get("error"), metrics=run.get("metrics", {}) if ok else {},
                costs=run.get("costs", {}) if ok else {},
                timings={n: {"samples": [t["p10"]]} for n, t in run.get("timings", {}).items()} if ok else {},
                per_query=run.get("per_query", {}) if ok else {}))
    return records
