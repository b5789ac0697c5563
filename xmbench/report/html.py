"""One self-contained HTML page of stored records: tables and inline PNG plots."""
from __future__ import annotations

import base64
import html

from xmbench.report import plots, profile
from xmbench.report.frame import records_frame
from xmbench.report.ingredients import INTRO as INGREDIENTS_INTRO
from xmbench.report.ingredients import ingredient_frame
from xmbench.report.markdown import cost_table_frame, quality_table_frame
from xmbench.report.profile import has_profile
from xmbench.report.step_notes import step_notes_frame
from xmbench.report.techniques import reference_of, technique_frame
from xmbench.report.tuning import point_label, search_frame, searches

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 12px; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
td { white-space: nowrap; }  /* "mean ± std" reads as one value */
.table-wrap { overflow-x: auto; max-width: 100%; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
pre { background: #f6f6f6; padding: 1em; white-space: pre-wrap; overflow-wrap: anywhere; }
.failed li { margin: 0.3em 0; overflow-wrap: anywhere; }
.note { color: #555; font-style: italic; }
"""


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _table(frame) -> str:
    return f"<div class='table-wrap'>{frame.to_html(index=False, border=0)}</div>"


def render_html(records, comparison_markdown: str | None = None) -> str:
    frame = records_frame(records)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>xmbench report</title><style>{STYLE}</style>"
             "</head><body><h1>xmbench report</h1>"]
    for suite, group in frame.groupby("suite", sort=False):
        suite_records = [r for r in records if r.suite == suite]
        failed = group[group.status != "ok"]
        parts.append(f"<h2>Suite {html.escape(str(suite))}</h2>")
        if len(failed):  # first: when runs fail, that is what the reader came for
            items = "".join(f"<li><code>{html.escape(r.variant)}</code> seed {r.seed}: "
                            f"{html.escape(str(r.error).splitlines()[0])}</li>" for r in failed.itertuples())
            parts.append(f"<h3>Failed runs ({len(failed)} of {len(group)})</h3><ul class='failed'>{items}</ul>")
        if len(failed) == len(group):
            parts.append("<p class='note'>Every run of this suite failed: there is nothing to tabulate or plot.</p>")
            continue
        parts.append("<h3>Retrieval (percent, mean ± std over seeds)</h3>" + _table(quality_table_frame(group)))
        parts.append("<h3>Costs</h3>" + _table(cost_table_frame(group)))
        techniques = technique_frame(suite_records)
        if len(techniques):
            parts.append(f"<h3>Techniques against the reference <code>{html.escape(reference_of(suite_records))}</code></h3>"
                         "<p class='note'>Δ in points, paired over the same test queries and seeds, 95% bootstrap "
                         "interval; an interval that contains 0 is not significant.</p>" + _table(techniques))
        parts.append(_tuning_html(suite_records))
        ingredients = ingredient_frame(suite_records)
        if len(ingredients):
            parts.append(f"<h3>Derived runs against their best ingredient</h3><p class='note'>"
                         f"{html.escape(INGREDIENTS_INTRO)}</p>" + _table(ingredients))
        notes = step_notes_frame(suite_records)
        if len(notes):
            parts.append("<h3>Step notes</h3><p class='note'>What the techniques measured during training: first and "
                         "last value and the mean over the steps that carried the note (each averaged over the seeds), "
                         "min and max over every such step.</p>"
                         + _table(notes))
        parts.append("<h3>Learning curves</h3>" + _img(plots.learning_curves(suite_records), "learning curves"))
        parts.append("<h3>R@1 per direction</h3>" + _img(plots.direction_bars(group), "R@1 per direction"))
        parts.append("<h3>Pareto: quality against latency and memory</h3>")
        for cost, label, alt in (("query_latency_ms", "query latency p50 (ms)", "pareto latency"),
                                 ("peak_rss_mb", "peak RSS while training (MiB)", "pareto memory"),
                                 ("trainable_params", "trainable parameters", "pareto trainable parameters")):
            variants = group[group.status == "ok"].dropna(subset=[cost]).variant.nunique() if cost in group else 0
            if variants < 2:
                parts.append(f"<p class='note'>{label}: {variants} variant measured — a Pareto front needs two or more.</p>")
            else:
                parts.append(_img(plots.pareto(group, cost, label), alt))
        for record in (r for r in suite_records if r.ok and has_profile(r)):
            parts.append(_profile_html(record))
    if comparison_markdown:
        parts.append(f"<h2>Against the baseline</h2><pre>{html.escape(comparison_markdown)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def render_roadmap_html(records) -> str:
    """The roadmap report (xmbench.report.roadmap) as one page, with a Pareto plot per suite and cost."""
    from xmbench.report.fronts import COSTS, technique_points
    from xmbench.report.roadmap import INTRO, TITLE, roadmap_sections

    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>xmbench roadmap</title>"
             f"<style>{STYLE}</style></head><body><h1>{TITLE}</h1>",
             f"<p class='note'>{_inline(INTRO)}</p>"]
    sections = roadmap_sections(records)
    if not sections:
        parts.append("<p class='note'>No suite with a reference variant among these records.</p>")
    for section in sections:
        parts.append(f"<h2>{_inline(section.title)}</h2>")
        parts += [f"<p class='note'>{_inline(paragraph)}</p>" for paragraph in section.text.split("\n\n") if paragraph]
        if section.table is not None:
            parts.append(_table(section.table))
        if section.code:
            parts.append(f"<pre>{html.escape(section.code)}</pre>")
        for suite in dict.fromkeys(r["suite"] for r in section.fronts):
            rows = [r for r in section.fronts if r["suite"] == suite]
            for cost, label, _ in COSTS:
                parts.append(_img(plots.technique_front(technique_points(rows, cost), cost, label, f"{suite}: Δ rsum "
                                                        f"against {label}"), f"pareto {suite} {label}"))
    parts.append(_tuning_html(records))  # [tune]: each search's validation score against the axis
    parts.append("</body></html>")
    return "\n".join(parts)


def _tuning_html(records) -> str:
    """A tuned suite's searches: the validation score against the axis, and each search's compact table."""
    found = searches(records)
    if not found:
        return ""
    parts = ["<h3>Tuning: each variant's search on validation</h3>"]
    curves = plots.tuning_curves(found)
    if curves:
        parts.append(_img(curves, "validation score against the tuned axis"))
    for variant, search in found.items():
        flags = "".join(f" <strong>{html.escape(flag)}</strong>" for flag in search.get("edges", []))
        parts.append(f"<p><code>{html.escape(variant)}</code>: chose {html.escape(point_label(search['chosen']))} "
                     f"({search['cost_s'] / 60:.1f} min of search){flags}</p>" + _table(search_frame(search)))
    return "".join(parts)


def _inline(text: str) -> str:
    """Escaped text whose `code` spans become <code>."""
    pieces = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(pieces))


def _profile_html(record) -> str:
    """The profile tables of one record, with its plots."""
    parts = [f"<h3>Profile: {html.escape(record.variant)} (seed {record.seed})</h3>"]
    phases, components, ops = profile.trace_frames(record)
    memory_phases, breakdown = profile.memory_frames(record)
    matrix, pairs = profile.alignment_frames(record)
    tables = [("Latency (p50)", profile.latency_frame(record)), ("Shape scaling", profile.scaling_frame(record)),
              ("FLOPs and MFU", profile.flops_frame(record)), ("Step phases", phases),
              ("Time by component", components), ("Top operators", ops), ("Peak memory per phase", memory_phases),
              ("Memory breakdown (MiB)", breakdown), ("Gradient norms", profile.grad_norm_frame(record)),
              ("R@1 by modality (%)", matrix), ("Modality pairs, worst first", pairs)]
    for title, frame in tables:
        if len(frame):
            parts.append(f"<h4>{html.escape(title)}</h4>" + _table(frame))
    if profile.latency_frame(record).shape[0]:
        parts.append(_img(plots.latency_by_batch(record), "latency by batch size"))
    if len(breakdown):
        parts.append(_img(plots.memory_breakdown(record), "memory breakdown"))
    if record.profile.get("grad_norms"):
        parts.append(_img(plots.grad_norms(record), "gradient norms"))
    return "\n".join(parts)
