"""Small statistics for comparisons: t intervals, paired bootstrap, Mann-Whitney U."""
from __future__ import annotations

import math

import numpy as np

# Two-sided 95% Student t quantiles for 1..30 degrees of freedom; beyond, the normal 1.96.
T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
       2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
       2.045, 2.042)


def mean_interval(values) -> tuple[float, float, float]:
    """Mean and 95% t interval; with one value the interval is that value."""
    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, mean, mean
    half = (T95[len(x) - 2] if len(x) - 1 <= len(T95) else 1.96) * float(x.std(ddof=1)) / math.sqrt(len(x))
    return mean, mean - half, mean + half


def paired_bootstrap(differences, n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the mean of per-query paired differences."""
    d = np.asarray(differences, dtype=float)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n_resamples, len(d)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def paired_bootstrap_sum(differences: list, n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% interval of a sum of means of independent paired differences (e.g. rsum over directions,
    each direction's queries resampled on their own)."""
    rng = np.random.default_rng(seed)
    total = np.zeros(n_resamples)
    for d in (np.asarray(x, dtype=float) for x in differences):
        total += d[rng.integers(0, len(d), size=(n_resamples, len(d)))].mean(axis=1)
    low, high = np.percentile(total, [2.5, 97.5])
    return float(low), float(high)


def mann_whitney_u(a, b, alternative: str = "two-sided") -> float:
    """p-value of the Mann-Whitney U test (normal approximation with tie correction).

    `alternative`: "two-sided", or "greater" (a tends to exceed b).
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        return 1.0
    combined = np.concatenate([x, y])
    ranks = _average_ranks(combined)
    u1 = ranks[:n1].sum() - n1 * (n1 + 1) / 2
    _, counts = np.unique(combined, return_counts=True)
    n = n1 + n2
    variance = n1 * n2 / 12 * ((n + 1) - (counts**3 - counts).sum() / (n * (n - 1)))
    if variance <= 0:
        return 1.0
    if alternative == "greater":
        z = (u1 - n1 * n2 / 2 - 0.5) / math.sqrt(variance)  # continuity correction
        return float(0.5 * math.erfc(z / math.sqrt(2)))
    z = (abs(u1 - n1 * n2 / 2) - 0.5) / math.sqrt(variance)
    return float(math.erfc(max(z, 0.0) / math.sqrt(2)))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + end + 1) / 2  # 1-based average over the tie group
            start = end
    return ranks


def permutation_test(a, b, max_exact: int = 20_000, seed: int = 0, alternative: str = "two-sided") -> float:
    """p-value of a difference in means, by permuting group labels; `alternative`: "two-sided", or
    "greater" (a's mean exceeds b's).

    Exact over every split while there are at most `max_exact` of them, else sampled. Used on
    per-process medians: each process of a run is one observation of the machine's speed.
    """
    import itertools

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    pooled, n = np.concatenate([x, y]), len(x)
    sign = (lambda d: d) if alternative == "greater" else abs
    observed = sign(x.mean() - y.mean())
    if math.comb(len(pooled), n) <= max_exact:
        splits = (list(c) for c in itertools.combinations(range(len(pooled)), n))
    else:
        rng = np.random.default_rng(seed)
        splits = (rng.permutation(len(pooled))[:n] for _ in range(max_exact))
    total = extreme = 0
    for chosen in splits:
        mask = np.zeros(len(pooled), dtype=bool)
        mask[chosen] = True
        total += 1
        extreme += sign(pooled[mask].mean() - pooled[~mask].mean()) >= observed - 1e-12
    return extreme / total
