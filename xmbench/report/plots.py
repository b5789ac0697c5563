"""Matplotlib figures of stored records, returned as PNG bytes (no display needed)."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from xmbench.bench.stats import mean_interval  # noqa: E402
from xmbench.config import DIRECTIONS  # noqa: E402
from xmbench.report.fronts import frontier  # noqa: E402


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def learning_curves(records) -> bytes:
    """Train and validation loss, and mean validation R@1, against the step, per variant (seed 0 first)."""
    fig, (loss_ax, r1_ax) = plt.subplots(1, 2, figsize=(11, 4))
    seen = set()
    for record in sorted(records, key=lambda r: r.seed):
        if not record.ok or record.variant in seen or not record.curve:
            continue
        seen.add(record.variant)
        steps = [p["step"] for p in record.curve]
        line, = loss_ax.plot(steps, [p["train_loss"] for p in record.curve], "-o", label=f"{record.variant} train")
        loss_ax.plot(steps, [p["val_loss"] for p in record.curve], "--s", color=line.get_color(),
                     label=f"{record.variant} val")
        r1 = [100 * np.mean(list(p["val_r1"].values())) for p in record.curve]
        r1_ax.plot(steps, r1, "-o", color=line.get_color(), label=record.variant)
    loss_ax.set(xlabel="step", ylabel="contrastive loss", title="Learning curves (seed of lowest number)")
    r1_ax.set(xlabel="step", ylabel="validation R@1, mean over directions (%)", title="Validation R@1")
    for ax in (loss_ax, r1_ax):
        if ax.lines:
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    return _png(fig)


def pareto(frame: pd.DataFrame, cost: str, cost_label: str) -> bytes:
    """Mean R@1 (over directions and seeds) against a cost, with the Pareto frontier marked."""
    ok = frame[frame.status == "ok"]
    r1_columns = [f"{d} R@1" for d in DIRECTIONS if f"{d} R@1" in ok]
    points = ok.assign(quality=100 * ok[r1_columns].mean(axis=1)).groupby("variant", sort=False)[["quality", cost]].mean()
    points = points.dropna()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.scatter(points[cost], points["quality"], s=40)
    for name, row in points.iterrows():
        ax.annotate(name, (row[cost], row["quality"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    front = frontier(points, cost)
    _mark_front(ax, front, cost)
    ax.set(xlabel=cost_label, ylabel="mean R@1 over directions (%)", title=f"Quality against {cost_label}")
    ax.grid(alpha=0.3)
    return _png(fig)


def technique_front(points: pd.DataFrame, cost: str, cost_label: str, title: str) -> bytes:
    """Δ rsum against a cost relative to the reference, one point per technique; only the front is named
    (a roadmap has dozens of techniques)."""
    front = frontier(points, cost)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    ax.scatter(points[cost], points["quality"], s=25, alpha=0.6)
    for name, row in front.iterrows():
        ax.annotate(name, (row[cost], row["quality"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    _mark_front(ax, front, cost)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(xlabel=cost_label, ylabel="Δ rsum against the reference (points)", title=title)
    ax.grid(alpha=0.3)
    return _png(fig)


def _mark_front(ax, front: pd.DataFrame, cost: str) -> None:
    if len(front) > 1:
        ax.plot(front[cost], front["quality"], "r--", label="Pareto frontier")
        ax.legend(fontsize=8)
    ax.scatter(front[cost], front["quality"], s=90, facecolors="none", edgecolors="r")


def direction_bars(frame: pd.DataFrame) -> bytes:
    """R@1 per direction and variant: mean over seeds with the 95% t interval."""
    ok = frame[frame.status == "ok"]
    variants = list(dict.fromkeys(ok.variant))
    directions = [d for d in DIRECTIONS if f"{d} R@1" in ok]
    fig, ax = plt.subplots(figsize=(max(6.5, 1.4 * len(directions) * max(1, len(variants)) / 3), 4.5))
    width = 0.8 / max(1, len(variants))
    for i, variant in enumerate(variants):
        rows = ok[ok.variant == variant]
        stats = [percent_interval(100 * rows[f"{d} R@1"]) for d in directions]
        means = [s[0] for s in stats]
        errors = np.array([[s[0] - s[1] for s in stats], [s[2] - s[0] for s in stats]])
        ax.bar(np.arange(len(directions)) + i * width, means, width, yerr=errors, capsize=3, label=variant)
    ax.set_xticks(np.arange(len(directions)) + width * (len(variants) - 1) / 2, directions)
    ax.set(ylabel="R@1 (%)", title="R@1 per direction (mean over seeds, 95% interval)")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def percent_interval(values) -> tuple[float, float, float]:
    """Mean and 95% t interval of a percentage, kept inside 0–100: the interval of two or three
    seeds can reach past the ends, a percentage cannot."""
    mean, low, high = mean_interval(values)
    return mean, max(low, 0.0), min(high, 100.0)


def latency_by_batch(record) -> bytes:
    """p50 latency per item against batch size, one line per encoder and query path (log-log)."""
    from xmbench.report.profile import latency_table

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, by_batch in sorted(latency_table(record.timings).items()):
        batches = sorted(by_batch)
        ax.plot(batches, [1e3 * by_batch[b] / b for b in batches], "-o", label=name)
    ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="p50 ms per item",
           title=f"{record.variant}: latency per modality and batch size")
    ax.grid(alpha=0.3, which="both")
    if ax.lines:
        ax.legend(fontsize=7)
    return _png(fig)


def memory_breakdown(record) -> bytes:
    """Stacked bars per component: frozen and trainable weights, gradients, optimizer state, activations."""
    breakdown = record.profile.get("memory", {}).get("breakdown_bytes", {})
    components = list(breakdown)
    parts = ["frozen_weights", "trainable_weights", "gradients", "optimizer_state", "activations"]
    fig, ax = plt.subplots(figsize=(7, 4))
    bottom = np.zeros(len(components))
    for part in parts:
        values = np.array([breakdown[c].get(part, 0) / 2**20 for c in components])
        ax.bar(components, values, bottom=bottom, label=part)
        bottom += values
    ax.set(ylabel="MiB", title=f"{record.variant}: memory by component")
    ax.tick_params(axis="x", rotation=30)
    ax.legend(fontsize=7)
    return _png(fig)


def grad_norms(record) -> bytes:
    """Gradient norm of each component at each step (before clipping)."""
    rows = record.profile.get("grad_norms", {}).get("per_step", [])
    fig, ax = plt.subplots(figsize=(7, 4))
    components = [k for k in (rows[0] if rows else {}) if k != "step"]
    for component in components:
        ax.plot([r["step"] for r in rows], [max(r[component], 1e-12) for r in rows], label=component)
    ax.set(yscale="log", xlabel="step", ylabel="gradient L2 norm", title=f"{record.variant}: gradient norms")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7)
    return _png(fig)


def tuning_curves(found: dict[str, dict]) -> bytes | None:
    """Each tuned variant's validation score against its one numeric axis (log scale when all values are
    positive), the chosen point ringed; None when no search has such an axis."""
    from xmbench.report.tuning import curve_points

    curves = {name: (search, curve_points(search)) for name, search in found.items()}
    curves = {name: (search, points) for name, (search, points) in curves.items() if points}
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for name, (search, (values, scores)) in curves.items():
        kept = [(v, s) for v, s in zip(values, scores) if s is not None]
        if not kept:
            continue
        line, = ax.plot(*zip(*kept), "-o", label=name)
        chosen = search["points"][search["index"]]
        ax.plot(values[search["index"]], chosen["score"], "o", ms=12, mfc="none", color=line.get_color())
    axis = next(iter(curves.values()))[0]
    if all(v > 0 for _, (_, (values, _)) in curves.items() for v in values):
        ax.set_xscale("log")
    ax.set(xlabel=" / ".join(dict.fromkeys(s["axes"][0] for s, _ in curves.values())),
           ylabel=f"{axis['split']} {axis['metric']}", title="Search: validation score against the axis (chosen ringed)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return _png(fig)
