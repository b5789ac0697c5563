"""Compare records with a baseline: one Delta per variant × metric, each with a mark.

Never a single number against a single number:
- quality (R@k, mAP per direction): mean over seeds with a 95% interval, and a paired
  bootstrap over the queries of the same test set; a change counts when the bootstrap
  interval of the difference excludes zero;
- timings: raw samples, Mann-Whitney U, and a minimum effect factor on the median;
- deterministic costs (parameters, adapter bytes): compared exactly.
A variant whose resolved config changed is incomparable; one that now fails is a new failure.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np

from xmbench.bench.record import Record
from xmbench.bench.stats import mann_whitney_u, mean_interval, paired_bootstrap, permutation_test
from xmbench.config import DIRECTIONS
from xmbench.profile import machine_reference

QUALITY_METRICS = ("R@1", "R@5", "R@10", "mAP")
TIMINGS = ("query_latency_s", "step_time_s")  # always present
TIMING_PREFIXES = ("encode.", "query.")  # the latency probes' timings
MACHINE_REFERENCE = machine_reference.NAME  # divides the other timings; never judged itself
EXACT_COSTS = ("trainable_params", "nonzero_trainable_params", "total_params", "adapter_bytes", "model_bytes")
EXACT_COST_PREFIXES = ("flops.", "mem.")  # the profile's FLOPs and memory-breakdown bytes
ALPHA = 0.01  # significance of a timing test over the raw samples of single processes
ALPHA_PROCESSES = 0.05  # significance of a test over per-process medians (few, independent)
MIN_PROCESSES = 3  # records a side before timings are compared process by process
PROCESS_PERCENTILE = 10  # each process's timing is summarised by its lower decile
MIN_TIMING_EFFECT = 1.05  # a median must move by 5% before a timing change counts
NOT_JUDGED = "not judged"  # how a timing's note starts when contention left too few processes to judge
BUSY_ABOVE = 0.10  # other processes' share of the CPUs above which a process's timing is not used
BUSY_MEASURE = {"query_latency_s": "latency_foreign_cpu_share"}  # the contention measured while a timing was taken

BETTER, WORSE, SAME = "better", "worse", "not significant"
NEW_FAILURE, FIXED, INCOMPARABLE, NEW, EQUAL = "new failure", "fixed", "incomparable", "new", "equal"
MARKS = {BETTER: "+", WORSE: "-", SAME: "~", NEW_FAILURE: "!", FIXED: "*", INCOMPARABLE: "x", NEW: "n", EQUAL: "="}


@dataclass
class Delta:
    variant: str
    metric: str  # "t2i R@1", "query_latency_s", "trainable_params", "status", "config"
    kind: str  # quality | timing | cost | status
    baseline: float | None
    current: float | None
    mark: str
    interval: tuple[float, float] | None = None  # of the difference (quality) or None
    note: str = ""
    change: float | None = None  # a timing's judged ratio (over the machine reference when both sides timed it)
    evidence: tuple | None = None  # a timing's judged log values (current, baseline) and their unit: "processes" | "samples"

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.current is None:
            return None
        return self.current - self.baseline

    @property
    def ratio(self) -> float | None:
        if self.change is not None:
            return self.change
        if not self.baseline or self.current is None:
            return None
        return self.current / self.baseline


def compare(current: list[Record], baseline: list[Record]) -> list[Delta]:
    """Deltas for every variant of `current`, matched by name with `baseline`."""
    deltas = []
    for variant, runs in _by_variant(current).items():
        base = _by_variant(baseline).get(variant)
        deltas.extend(compare_variant(variant, runs, base))
    return deltas


def _by_variant(records: list[Record]) -> dict[str, list[Record]]:
    grouped: dict[str, list[Record]] = {}
    for record in records:
        grouped.setdefault(record.variant, []).append(record)
    return grouped


def compare_variant(variant: str, current: list[Record], baseline: list[Record] | None) -> list[Delta]:
    if not baseline:
        return [Delta(variant, "status", "status", None, None, NEW, note="not in the baseline")]
    if {r.variant_id for r in current} != {r.variant_id for r in baseline}:
        return [Delta(variant, "config", "status", None, None, INCOMPARABLE,
                      note="the resolved config changed since the baseline; accept a new baseline")]
    current_ok, baseline_ok = [r for r in current if r.ok], [r for r in baseline if r.ok]
    if not current_ok:
        mark = NEW_FAILURE if baseline_ok else SAME
        return [Delta(variant, "status", "status", None, None, mark, note=(current[0].error or "").splitlines()[0])]
    if not baseline_ok:
        return [Delta(variant, "status", "status", None, None, FIXED, note="failed in the baseline")]
    return (_quality(variant, current_ok, baseline_ok) + _timings(variant, current_ok, baseline_ok)
            + _exact_costs(variant, current_ok, baseline_ok))


def per_query(record: Record, direction: str, metric: str) -> np.ndarray:
    """Each query's contribution to a quality metric: its hit (R@k, 0/1) or its average precision."""
    ranks = record.per_query[direction]
    if metric == "mAP":
        return np.asarray(ranks["ap"], dtype=float)
    return (np.asarray(ranks["first_rank"]) <= int(metric.split("@")[1])).astype(float)


def _quality(variant: str, current: list[Record], baseline: list[Record]) -> list[Delta]:
    deltas = []
    for direction in DIRECTIONS:
        if not all(direction in r.per_query for r in current + baseline):
            continue
        for metric in QUALITY_METRICS:
            cur = [100 * r.metrics[direction][metric] for r in current]
            base = [100 * r.metrics[direction][metric] for r in baseline]
            interval = paired_interval(current, baseline, direction, metric)
            if interval is None:  # not the same queries: fall back to seeds alone
                mark, note = _seed_mark(cur, base)
            else:
                mark = SAME if interval[0] <= 0 <= interval[1] else (BETTER if interval[0] > 0 else WORSE)
                note = f"paired bootstrap over {len(current[0].per_query[direction]['first_rank'])} queries"
            if len(cur) > 1:
                m, low, high = mean_interval(cur)
                note += f"; seeds: {m:.1f} [{low:.1f}, {high:.1f}]"
            deltas.append(Delta(variant, f"{direction} {metric}", "quality", statistics.fmean(base),
                                statistics.fmean(cur), mark, interval, note))
    return deltas


def paired_differences(current, baseline, direction, metric) -> np.ndarray | None:
    """Per-query differences (current − baseline), averaged over the seeds both sides ran; None when
    the two sides did not rank the same queries."""
    pairs = [(c, b) for c in current for b in baseline if c.seed == b.seed]
    if not pairs:
        pairs = list(zip(current, baseline))
    differences = []
    for c, b in pairs:
        x, y = per_query(c, direction, metric), per_query(b, direction, metric)
        if len(x) != len(y):
            return None
        differences.append(x - y)
    return np.mean(differences, axis=0)


def paired_interval(current, baseline, direction, metric) -> tuple[float, float] | None:
    """Bootstrap interval (points) of the per-query difference, averaged over shared seeds."""
    differences = paired_differences(current, baseline, direction, metric)
    return None if differences is None else tuple(100 * v for v in paired_bootstrap(differences))


def _seed_mark(current: list[float], baseline: list[float]) -> tuple[str, str]:
    _, low_c, high_c = mean_interval(current)
    _, low_b, high_b = mean_interval(baseline)
    if low_c > high_b:
        return BETTER, "seed intervals apart"
    if high_c < low_b:
        return WORSE, "seed intervals apart"
    return SAME, "seed intervals overlap"


def _timings(variant: str, current: list[Record], baseline: list[Record]) -> list[Delta]:
    """Per-process medians when both sides ran in several processes, else the raw samples.

    A process is the unit of machine noise: on a shared or virtual machine one process can run
    20% faster or slower than the next throughout, which raw samples of a single process would
    call significant. With at least MIN_PROCESSES records a side, each process contributes its
    lower decile (interference from other work only ever adds time, so the 10th percentile is
    the steadiest estimate of the path's own cost, measured: 2-3× less spread than the median
    across processes here); the change is the ratio of the medians of those deciles and its
    significance a permutation test over their logarithms. When every process on both sides also
    timed the machine reference beside its query path (xmbench.profile.machine_reference), each
    decile is divided by that process's reference decile first: the change is then the model's,
    not the machine's (the raw ratio stays in the note). Otherwise Mann-Whitney U over the raw
    samples and the ratio of medians.
    """
    return [d for name in timing_names(current + baseline) if (d := timing_delta(variant, name, current, baseline))]


def timing_delta(variant: str, name: str, current: list[Record], baseline: list[Record]) -> Delta | None:
    """One timing judged as `_timings` describes; None when either side lacks its samples.

    Processes that other work crowded while they timed `name` are left out (`busy`); when that
    leaves too few to judge, the timing is not judged and the note says why.
    """
    timed_current = [r for r in current if r.timings.get(name, {}).get("samples")]
    timed_baseline = [r for r in baseline if r.timings.get(name, {}).get("samples")]
    if not timed_current or not timed_baseline:
        return None
    current, baseline = [r for r in timed_current if not busy(r, name)], [r for r in timed_baseline if not busy(r, name)]
    crowded = len(timed_current) - len(current) + len(timed_baseline) - len(baseline)
    enough = min(len(timed_current), len(timed_baseline)) < MIN_PROCESSES or min(len(current), len(baseline)) >= MIN_PROCESSES
    if not current or not baseline or not enough:
        return Delta(variant, name, "timing", None, None, SAME,
                     note=f"{NOT_JUDGED}: other processes took over {BUSY_ABOVE:.0%} of the CPUs while {crowded} of "
                          f"{len(timed_current) + len(timed_baseline)} processes timed it; run again on a quiet machine")
    cur = [r.timings[name]["samples"] for r in current]
    base = [r.timings[name]["samples"] for r in baseline]
    if len(cur) >= MIN_PROCESSES and len(base) >= MIN_PROCESSES:
        cur_deciles, base_deciles = process_deciles(current, name), process_deciles(baseline, name)
        base_value, cur_value = float(np.exp(np.median(base_deciles))), float(np.exp(np.median(cur_deciles)))
        test = f"permutation test over {len(base)}/{len(cur)} process p10s"
        ratio = cur_value / base_value
        cur_relative, base_relative = relative_deciles(current, name), relative_deciles(baseline, name)
        if cur_relative is not None and base_relative is not None:
            cur_deciles, base_deciles = cur_relative, base_relative
            test += f" over the machine reference (raw ×{ratio:.3f})"
            ratio = float(np.exp(np.median(cur_deciles) - np.median(base_deciles)))
        p = permutation_test(cur_deciles, base_deciles)
        alpha, evidence = ALPHA_PROCESSES, (cur_deciles, base_deciles, "processes")
    else:
        flat_cur, flat_base = [x for s in cur for x in s], [x for s in base for x in s]
        p = mann_whitney_u(flat_cur, flat_base)
        base_value, cur_value = statistics.median(flat_base), statistics.median(flat_cur)
        alpha, test = ALPHA, f"Mann-Whitney over {len(flat_base)}/{len(flat_cur)} samples"
        ratio = cur_value / base_value
        evidence = (np.log(flat_cur), np.log(flat_base), "samples")
    if p >= alpha or 1 / MIN_TIMING_EFFECT < ratio < MIN_TIMING_EFFECT:
        mark = SAME
    else:
        mark = WORSE if ratio > 1 else BETTER  # lower is better
    left_out = f"; {crowded} busy processes left out" if crowded else ""
    return Delta(variant, name, "timing", base_value, cur_value, mark,
                 note=f"median ×{ratio:.3f}, {test}, p={p:.2g}{left_out}", change=ratio, evidence=evidence)


def rise_beyond(delta: Delta, limit: float) -> float | None:
    """One-sided p-value that a timing rose by more than `limit` (a fraction: 0.15 for 15%).

    The same test that marked the timing, on the current side's values shifted down by the limit:
    a gate fails a timing only when the data show the rise exceeds what the rule allows, not
    merely that it is significant with a point estimate above the limit (which an A/A run at
    ×1.16 met on this VM). None for a delta without timing evidence.
    """
    if delta.evidence is None:
        return None
    current, baseline, unit = delta.evidence
    shifted = np.asarray(current) - np.log1p(limit)
    if unit == "processes":
        return permutation_test(shifted, baseline, alternative="greater")
    return mann_whitney_u(shifted, baseline, alternative="greater")


def rise_alpha(delta: Delta) -> float:
    """The significance `rise_beyond` is held to: that of the test that judged the timing."""
    return ALPHA_PROCESSES if delta.evidence and delta.evidence[2] == "processes" else ALPHA


def busy(record: Record, name: str) -> bool:
    """Did other processes take more than BUSY_ABOVE of the CPUs while this record's process timed `name`?

    The query path (and the machine reference beside it) has its own measurement; other timings
    are judged by the whole run's share. Records that measured neither count as quiet.
    """
    share = record.costs.get(BUSY_MEASURE.get(name, "foreign_cpu_share"))
    return share is not None and share > BUSY_ABOVE


def process_deciles(records: list[Record], name: str) -> np.ndarray:
    """The log of each record's lower-decile `name`, for the records that timed it."""
    return np.log([np.percentile(r.timings[name]["samples"], PROCESS_PERCENTILE)
                   for r in records if r.timings.get(name, {}).get("samples")])


def relative_deciles(records: list[Record], name: str) -> np.ndarray | None:
    """`process_deciles` less each process's machine-reference decile; None unless every record timed it."""
    timed = [r for r in records if r.timings.get(name, {}).get("samples")]
    if name == MACHINE_REFERENCE or not all(r.timings.get(MACHINE_REFERENCE, {}).get("samples") for r in timed):
        return None
    return process_deciles(timed, name) - process_deciles(timed, MACHINE_REFERENCE)


def timing_names(records: list[Record]) -> list[str]:
    """The fixed timings first, then every probe's timing any record holds, in a stable order."""
    extra = sorted({name for r in records for name in r.timings} - set(TIMINGS) - {MACHINE_REFERENCE})
    return list(TIMINGS) + extra


def is_timing(name: str) -> bool:
    return name in TIMINGS or name.startswith(TIMING_PREFIXES)


def exact_cost_names(records: list[Record]) -> list[str]:
    """Deterministic costs: parameters, adapter bytes, FLOPs and the memory breakdown's bytes."""
    extra = sorted({n for r in records for n in r.costs if n.startswith(EXACT_COST_PREFIXES)} - set(EXACT_COSTS))
    return list(EXACT_COSTS) + extra


def _exact_costs(variant: str, current: list[Record], baseline: list[Record]) -> list[Delta]:
    deltas = []
    for name in exact_cost_names(current + baseline):
        cur, base = current[0].costs.get(name), baseline[0].costs.get(name)
        if cur is None or base is None:
            continue
        mark = EQUAL if cur == base else (WORSE if cur > base else BETTER)  # smaller is better
        deltas.append(Delta(variant, name, "cost", base, cur, mark, note="deterministic: compared exactly"))
    return deltas
