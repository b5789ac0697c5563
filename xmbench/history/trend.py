"""Trends over commits: a markdown table per metric, and a page with one plot per metric.

The plots are inline SVG written here rather than matplotlib PNGs (xmbench/report/plots.py): an SVG
point carries a `<title>`, which the browser shows on hover, so each point names its commit, date,
subject and value as asv's published graphs do, in a self-contained file with no script.
Quality is drawn with its seeds' 95% interval, timings with the range of the processes' p10s;
steps judged regressions are marked red, improvements green, at the first commit of the new level.
"""
from __future__ import annotations

import html

from tabulate import tabulate

from xmbench.history.series import Point, kind_of, series
from xmbench.history.steps import IMPROVEMENT, REGRESSION, Step
from xmbench.history.store import Entry

UNIT = {"quality": "points", "timing": "s", "cost": ""}


def _fmt(value: float, kind: str) -> str:
    return f"{value:.4g}" if kind == "timing" else (f"{value:.2f}" if kind == "quality" else f"{value:g}")


def table(by_variant: dict[str, list[Entry]], metric: str, steps: list[Step]) -> str:
    """Rows of commits (oldest first), a column per variant: value [low, high], and the step mark."""
    kind = kind_of(metric)
    marks = {(s.variant, s.commit): s for s in steps if s.metric == metric and s.judged}
    rows: dict[str, list] = {}
    order: list[str] = []
    names = list(by_variant)
    for column, (variant, entries) in enumerate(by_variant.items()):
        for p in series(entries, metric)[0]:
            if p.commit not in rows:
                rows[p.commit] = [p.commit[:10], p.date[:10], p.subject[:40]] + [""] * len(names)
                order.append(p.commit)
            step = marks.get((variant, p.commit))
            mark = "" if step is None else (" ▼ regression" if step.verdict == REGRESSION else " ▲ improvement")
            spread = "" if p.low == p.high else f" [{_fmt(p.low, kind)}, {_fmt(p.high, kind)}]"
            rows[p.commit][3 + column] = f"{_fmt(p.value, kind)}{spread}{mark}"
    unit = f" ({UNIT[kind]})" if UNIT[kind] else ""
    return f"### {metric}{unit}\n\n" + tabulate([rows[c] for c in order], headers=["commit", "date", "subject", *names],
                                                 tablefmt="github")


def steps_table(steps: list[Step]) -> str:
    """The judged steps: where, how big, with compare's interval and the rule they break or clear."""
    judged = [s for s in steps if s.judged]
    if not judged:
        return "No step beyond a gate's threshold and significant."
    rows = [[s.verdict, s.variant, s.metric, s.commit[:10], s.subject[:40], _fmt(s.before, kind_of(s.metric)),
             _fmt(s.after, kind_of(s.metric)), _change(s), s.rule] for s in judged]
    return tabulate(rows, headers=["step", "variant", "metric", "commit", "subject", "before", "after", "change", "rule"],
                    tablefmt="github")


def _change(step: Step) -> str:
    if kind_of(step.metric) == "timing" and step.before:
        return f"×{step.after / step.before:.3f}"
    interval = f" [{step.interval[0]:.2f}, {step.interval[1]:.2f}]" if step.interval else ""
    return f"{step.size:+.2f}{interval}"


def svg_plot(by_variant: dict[str, list[Entry]], metric: str, steps: list[Step], width: int = 720, height: int = 260) -> str:
    """One metric over commits, a line per variant; every point's hover label names its commit."""
    lines = {v: series(e, metric)[0] for v, e in by_variant.items()}
    commits = list(dict.fromkeys(p.commit for pts in lines.values() for p in pts))
    values = [x for pts in lines.values() for p in pts for x in (p.low, p.high)]
    if not commits or not values:
        return ""
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or abs(high) * 0.05 or 1.0
    low, high = low - pad, high + pad
    left, right, top, bottom = 60, 10, 24, 30
    x = lambda i: left + (width - left - right) * (i + 0.5) / len(commits)
    y = lambda v: top + (height - top - bottom) * (high - v) / (high - low)
    kind = kind_of(metric)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-size="11">',
             f'<text x="{left}" y="14" font-weight="bold">{html.escape(metric)}'
             f'{" (" + UNIT[kind] + ")" if UNIT[kind] else ""}</text>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#888"/>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#888"/>']
    for v in (low + pad, high - pad):
        parts.append(f'<text x="{left - 4}" y="{y(v) + 4:.1f}" text-anchor="end">{_fmt(v, kind)}</text>')
    parts.append(f'<text x="{left}" y="{height - 12}">{html.escape(commits[0][:8])}</text>')
    parts.append(f'<text x="{width - right}" y="{height - 12}" text-anchor="end">{html.escape(commits[-1][:8])}</text>')
    marks = {(s.variant, s.commit): s.verdict for s in steps if s.metric == metric and s.judged}
    palette = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#7f7f7f")
    for n, (variant, pts) in enumerate(lines.items()):
        colour = palette[n % len(palette)]
        coords = [(x(commits.index(p.commit)), p) for p in pts]
        parts.append('<polyline fill="none" stroke="{}" points="{}"/>'.format(
            colour, " ".join(f"{cx:.1f},{y(p.value):.1f}" for cx, p in coords)))
        for cx, p in coords:
            parts.append(_point_svg(cx, p, y, colour, variant, kind, marks.get((variant, p.commit))))
    parts.append("</svg>")
    return "\n".join(parts)


def _point_svg(cx: float, p: Point, y, colour: str, variant: str, kind: str, verdict: str | None) -> str:
    label = (f"{p.commit[:10]} {p.date[:10]} {p.subject}\n{variant}: {_fmt(p.value, kind)} "
             f"[{_fmt(p.low, kind)}, {_fmt(p.high, kind)}], {p.seeds} seeds" + (f"\n{verdict} step" if verdict else ""))
    fill = {REGRESSION: "#d62728", IMPROVEMENT: "#2ca02c"}.get(verdict or "", colour)
    radius = 5 if verdict else 3
    return (f'<g><title>{html.escape(label)}</title>'
            f'<line x1="{cx:.1f}" y1="{y(p.low):.1f}" x2="{cx:.1f}" y2="{y(p.high):.1f}" stroke="{colour}" opacity="0.5"/>'
            f'<circle cx="{cx:.1f}" cy="{y(p.value):.1f}" r="{radius}" fill="{fill}"/></g>')


def page(suite: str, machine: str, by_variant: dict[str, list[Entry]], metrics: list[str], steps: list[Step]) -> str:
    """The self-contained HTML page: the judged steps, then one plot per metric."""
    plots = [svg_plot(by_variant, m, steps) for m in metrics]
    judged = [s for s in steps if s.judged]
    rows = "".join(f"<tr><td>{s.verdict}</td><td>{html.escape(s.variant)}</td><td>{html.escape(s.metric)}</td>"
                   f"<td><code>{s.commit[:10]}</code> {html.escape(s.subject)}</td><td>{html.escape(_change(s))}</td></tr>"
                   for s in judged) or "<tr><td colspan=5>none</td></tr>"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>xmbench history: {html.escape(suite)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;border-bottom:1px solid #ddd}</style>"
            f"</head><body><h1>History of suite {html.escape(suite)}</h1><p>machine class <code>{html.escape(machine)}</code>; "
            f"variants: {html.escape(', '.join(by_variant))}. Hover a point for its commit.</p>"
            "<h2>Steps</h2><table><tr><th>step</th><th>variant</th><th>metric</th><th>first commit after</th>"
            f"<th>change</th></tr>{rows}</table><h2>Metrics</h2>" + "\n".join(f"<div>{p}</div>" for p in plots if p)
            + "</body></html>")
