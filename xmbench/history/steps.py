"""Step detection: where did a metric's series change level, and is the change real?

Two stages, each replaceable on its own:

1. **Segmentation** (`segment`): the series of per-commit values is fitted by a piecewise-constant
   function minimising

       sum over segments of  sum_i |y_i - median(segment)|   +   penalty × (number of segments)

   exactly, by dynamic programming over every split (optimal partitioning, O(n²) segment costs).
   The absolute-deviation cost makes one wild commit cost its distance once instead of its square,
   so an outlier rarely pays for a segment of its own. The penalty scales with the series' noise,
   estimated robustly as σ = 1.4826 · median |y_{i+1} − y_i| / √2 (a step moves one difference only):
   penalty = PENALTY_SIGMAS · σ · ln(n + 1). Timings are segmented on their logarithm (a step is a ratio).

2. **Significance** (`judge`): each change point splits its neighbouring segments into a before and
   an after side; the entries of both sides become Records and go through `compare` (paired bootstrap
   over queries for quality, seeds' intervals in the note; per-process p10s with a permutation test or
   Mann-Whitney for timings; exact for deterministic costs). The step is a **regression** when the
   delta is `worse` and breaks one of the suite's gate rules (`GateRule.violated_by`: significant and
   beyond its threshold), an **improvement** when `better` by more than a rule's threshold. Other
   change points are kept as `not significant` / `within threshold`; a series no rule or comparison
   covers (rsum) is `not gated`. A step is reported at the first commit after it.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from xmbench.bench.compare import BETTER, WORSE, Delta, compare_variant
from xmbench.bench.gate import GateRule
from xmbench.history.series import kind_of, series, to_records
from xmbench.history.store import Entry

PENALTY_SIGMAS = 3.0  # calibrated on synthetic series (tests/history/test_steps.py) and measured histories
REGRESSION, IMPROVEMENT = "regression", "improvement"
NOT_SIGNIFICANT, WITHIN, NOT_GATED = "not significant", "within threshold", "not gated"


@dataclass(frozen=True)
class Step:
    """A change of level of one variant's metric, at `commit` (the first commit of the new level)."""

    variant: str
    metric: str
    commit: str
    subject: str
    index: int  # position of `commit` in the series
    before: float  # the compared sides' values (quality in points, timings in s)
    after: float
    verdict: str  # regression | improvement | not significant | within threshold | not gated
    interval: tuple[float, float] | None  # 95% interval of the change (quality), from compare
    note: str
    rule: str = ""

    @property
    def size(self) -> float:
        return self.after - self.before

    @property
    def judged(self) -> bool:
        return self.verdict in (REGRESSION, IMPROVEMENT)


def noise_scale(values) -> float:
    """Robust σ of a series' noise from its successive differences (0 for a constant series)."""
    y = np.asarray(values, dtype=float)
    if len(y) < 2:
        return 0.0
    return float(1.4826 * np.median(np.abs(np.diff(y))) / math.sqrt(2))


def default_penalty(values) -> float:
    """PENALTY_SIGMAS · σ · ln(n + 1), floored so that a constant stretch never splits on rounding."""
    y = np.asarray(values, dtype=float)
    floor = 1e-9 * (1.0 + float(np.max(np.abs(y)))) if len(y) else 1e-9
    return max(PENALTY_SIGMAS * noise_scale(y) * math.log(len(y) + 1), floor)


def segment(values, penalty: float | None = None) -> list[int]:
    """Change points of the optimal penalised piecewise-constant L1 fit: the index where each new level starts.

    Args:
        values: the series, oldest first.
        penalty: the cost of one more segment; default `default_penalty(values)`.

    Returns:
        Sorted indices in 1..n-1; empty for a series with one level.
    """
    y = [float(v) for v in values]
    n = len(y)
    if n < 2:
        return []
    beta = default_penalty(y) if penalty is None else penalty
    best = [0.0] + [math.inf] * n  # best[j]: cost of the optimal fit of y[:j]
    start = [0] * (n + 1)
    cost = _segment_costs(y)
    for j in range(1, n + 1):
        for i in range(j):
            candidate = best[i] + cost[i][j - i - 1] + beta
            if candidate < best[j] - 1e-12:
                best[j], start[j] = candidate, i
    points, j = [], n
    while j > 0:
        j = start[j]
        if j > 0:
            points.append(j)
    return sorted(points)


def _segment_costs(y: list[float]) -> list[list[float]]:
    """cost[i][k]: sum of absolute deviations from the median of y[i:i+k+1], for every segment."""
    costs = []
    for i in range(len(y)):
        window: list[float] = []
        row = []
        for value in y[i:]:
            bisect.insort(window, value)
            half = len(window) // 2
            median = window[half] if len(window) % 2 else (window[half - 1] + window[half]) / 2
            row.append(sum(abs(v - median) for v in window))
        costs.append(row)
    return costs


def fit_values(entries: list[Entry], metric: str) -> tuple[list[float], list[Entry]]:
    """The values segmentation sees (log for timings) and the entries they belong to."""
    points, used = series(entries, metric)
    values = [math.log(p.value) if kind_of(metric) == "timing" and p.value > 0 else p.value for p in points]
    return values, used


def detect(entries: list[Entry], metric: str, rules: list[GateRule], cache: dict | None = None) -> list[Step]:
    """Every change point of one variant's metric, each judged as the module docstring says.

    Args:
        entries: one variant's clean entries in commit order.
        metric: a series name (`series.metric_names`).
        rules: the suite's gate rules.
        cache: deltas by the commits of both sides, shared across the series of one variant (a fault moves
            many series at the same commit, and one comparison judges them all).
    """
    values, used = fit_values(entries, metric)
    cuts = segment(values)
    bounds = [0, *cuts, len(used)]
    return [judge(used[bounds[k - 1]:bounds[k]], used[bounds[k]:bounds[k + 1]], metric, rules, bounds[k], cache)
            for k in range(1, len(bounds) - 1)]


def judge(before: list[Entry], after: list[Entry], metric: str, rules: list[GateRule], index: int = 0,
          cache: dict | None = None) -> Step:
    """The step between two runs of commits, judged by compare's statistics and the gate's rules."""
    first = after[0]
    delta = _delta(before, after, metric, {} if cache is None else cache)
    if delta is None or delta.baseline is None:
        b, a = _mean_value(before, metric), _mean_value(after, metric)
        return Step(first.variant, metric, first.commit, first.subject, index, b, a, NOT_GATED, None,
                    "no comparison covers this series")
    verdict, rule = _verdict(delta, [r for r in rules if r.applies_to(delta)])
    return Step(first.variant, metric, first.commit, first.subject, index, delta.baseline, delta.current, verdict,
                delta.interval, f"{len(before)} commits before, {len(after)} after; {delta.note}", rule)


def _delta(before: list[Entry], after: list[Entry], metric: str, cache: dict) -> Delta | None:
    key = (after[0].variant, tuple(id(e) for e in before), tuple(id(e) for e in after))
    if key not in cache:
        cache[key] = {d.metric: d for d in compare_variant(after[0].variant, to_records(after), to_records(before))}
    return cache[key].get(metric)


def _mean_value(entries: list[Entry], metric: str) -> float:
    from xmbench.history.series import point

    values = [p.value for e in entries if (p := point(e, metric)) is not None]
    return float(np.mean(values)) if values else float("nan")


def _verdict(delta: Delta, rules: list[GateRule]) -> tuple[str, str]:
    if not rules:
        return NOT_GATED, ""
    if delta.mark not in (WORSE, BETTER):
        return NOT_SIGNIFICANT, ""
    for rule in rules:
        if delta.mark == WORSE and rule.violated_by(delta):
            return REGRESSION, rule.key
        if delta.mark == BETTER and _improved_beyond(delta, rule):
            return IMPROVEMENT, rule.key
    return WITHIN, ""


def _improved_beyond(delta: Delta, rule: GateRule) -> bool:
    """The mirror of a rule's limit: quality up, timings and costs down by more than it allows."""
    if delta.kind == "quality":
        return delta.current - delta.baseline > rule.limit
    if rule.relative:
        return delta.ratio is not None and delta.ratio > 0 and 1.0 / delta.ratio - 1.0 > rule.limit
    return delta.baseline - delta.current > rule.limit


def drift(entries: list[Entry], metric: str, rules: list[GateRule], cache: dict | None = None) -> Step | None:
    """The head's level against every earlier level of the series: the largest regression, if any.

    Steps that each stay under a rule's threshold can add up beyond it (a slow drift); comparing the
    head's segment with each earlier one, by the same statistics and rules, catches that. The step is
    named at the first commit after the earlier level it is measured from.
    """
    values, used = fit_values(entries, metric)
    bounds = [0, *segment(values), len(used)]
    head = used[bounds[-2]:]
    worst = None
    for k in range(len(bounds) - 3):  # every level but the head's and the one just before it (its own step)
        step = judge(used[bounds[k]:bounds[k + 1]], head, metric, rules, bounds[k + 1], cache)
        if step.verdict == REGRESSION and (worst is None or abs(step.size) > abs(worst.size)):
            first = used[bounds[k + 1]]
            worst = Step(step.variant, metric, first.commit, first.subject, bounds[k + 1], step.before, step.after,
                         REGRESSION, step.interval, f"drift: the head against commits {bounds[k]}..{bounds[k + 1] - 1}; "
                         f"{step.note}", step.rule)
    return worst


def head_regressions(steps: list[Step]) -> list[Step]:
    """The regressions the head still stands in: the last judged step of each series, when it is a regression."""
    last: dict[tuple[str, str], Step] = {}
    for step in steps:
        if step.judged:
            key = (step.variant, step.metric)
            if key not in last or step.index > last[key].index:
                last[key] = step
    return [s for s in last.values() if s.verdict == REGRESSION]
