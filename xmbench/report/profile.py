"""Profile sections of a report: one block of tables per profiled record.

Each table is built as a DataFrame (so the HTML report renders the same tables) by a function
named after what it shows; `render_profile` joins them as markdown.
"""
from __future__ import annotations

import pandas as pd

from xmbench.bench.compare import TIMING_PREFIXES

MIB = 2**20  # reports import no torch: rendering stored records stays fast


def latency_table(timings: dict[str, dict]) -> dict[str, dict[int, float]]:
    """{"encode.text": {1: p50 s, 8: …}, "query.t2i": {…}} from a record's timings."""
    table: dict[str, dict[int, float]] = {}
    for name, measurement in timings.items():
        if name.startswith(TIMING_PREFIXES):
            path, _, batch = name.rpartition(".b")
            table.setdefault(path, {})[int(batch)] = measurement["p50"]
    return table


def latency_frame(record) -> pd.DataFrame:
    """p50 latency (ms) per encoder / query path and batch size, with items per second."""
    table = latency_table(record.timings)
    rows = []
    for name, by_batch in sorted(table.items()):
        row = {"path": name}
        for batch, p50 in sorted(by_batch.items()):
            row[f"b{batch} p50 ms"] = round(1e3 * p50, 2)
            row[f"b{batch} items/s"] = round(batch / p50, 1)
        rows.append(row)
    return pd.DataFrame(rows)


def scaling_frame(record) -> pd.DataFrame:
    rows = []
    for modality, entry in record.profile.get("shape_scaling", {}).items():
        fit = entry.get("fit", {})
        points = ", ".join(f"{size}: {1e3 * p50:.1f}" for size, p50 in zip(entry["sizes"], entry["p50_s"]))
        rows.append({"encoder": modality, "batch": entry["batch_size"], "p50 ms by size": points,
                     "slope": f"{1e3 * fit['slope']:.4g} ms/{entry['x_unit'][:-1]}" if fit else "–",
                     "r²": round(fit["r2"], 3) if fit else None,
                     "refused sizes": ", ".join(entry["errors"]) or "–"})
    return pd.DataFrame(rows)


def flops_frame(record) -> pd.DataFrame:
    info = record.profile.get("flops")
    if not info:
        return pd.DataFrame()
    rows = [{"what": f"{m} forward / sample", "GFLOP": round(v / 1e9, 4)} for m, v in info["per_sample_forward"].items()]
    if info.get("train_step_flops") is not None:  # none for a model transformed after training (quantised)
        rows.append({"what": "training step (fwd+bwd)", "GFLOP": round(info["train_step_flops"] / 1e9, 3)})
    elif info.get("note"):
        rows.append({"what": f"training step: {info['note']}", "GFLOP": "–"})
    if info.get("mfu") is not None:
        rows.append({"what": "achieved GFLOP/s (median step)", "GFLOP": round(info["achieved_flops_per_s"] / 1e9, 2)})
        rows.append({"what": "measured matmul peak GFLOP/s", "GFLOP": round(info["peak_flops_per_s"] / 1e9, 2)})
        rows.append({"what": "MFU (%)", "GFLOP": round(100 * info["mfu"], 2)})
    return pd.DataFrame(rows)


def trace_frames(record) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(phases, components, top operators) of the training trace, in ms per step."""
    info = record.profile.get("trace", {}).get("training")
    if not info:
        return pd.DataFrame(), pd.DataFrame(), pd.DataFrame()
    step = info["step_s"]
    phases = pd.DataFrame([{"phase": k, "ms/step": round(1e3 * v, 2), "% of step": round(100 * v / step, 1)}
                           for k, v in info["phases_s"].items()])
    components = pd.DataFrame([{"component": k, "forward ms": round(1e3 * v["forward_s"], 2),
                                "backward ms": round(1e3 * v["backward_s"], 2),
                                "% of step": round(100 * (v["forward_s"] + v["backward_s"]) / step, 1)}
                               for k, v in info["components_s"].items()])
    ops = pd.DataFrame([{"operator": o["name"], "calls": o["calls"], "self CPU ms": round(1e3 * o["self_cpu_s"], 1),
                         "self device ms": round(1e3 * o["self_device_s"], 1)} for o in info["top_ops"]])
    return phases, components, ops


def memory_frames(record) -> tuple[pd.DataFrame, pd.DataFrame]:
    info = record.profile.get("memory")
    if not info:
        return pd.DataFrame(), pd.DataFrame()
    phases = pd.DataFrame([{"phase": k, "peak MiB": round(v["peak_mb"], 1), "growth MiB": round(v["growth_mb"], 1)}
                           for k, v in info["per_phase"].items()])
    breakdown = pd.DataFrame([{"component": c, **{k: round(v / MIB, 2) for k, v in parts.items()}}
                              for c, parts in info["breakdown_bytes"].items()])
    return phases, breakdown


def grad_norm_frame(record) -> pd.DataFrame:
    summary = record.profile.get("grad_norms", {}).get("summary", {})
    return pd.DataFrame([{"component": c, "median": round(v["median"], 4), "max": round(v["max"], 4),
                          "share %": round(100 * v["share"], 1)} for c, v in summary.items()])


def alignment_frames(record) -> tuple[pd.DataFrame, pd.DataFrame]:
    info = record.profile.get("alignment")
    if not info:
        return pd.DataFrame(), pd.DataFrame()
    matrix = pd.DataFrame([{"query \\ gallery": q, **{g: "–" if v is None else f"{100 * v:.1f}" for g, v in row.items()}}
                           for q, row in info["r1_matrix"].items()])
    ranked = {r["pair"]: r for r in info["ranked_pairs"]}
    pairs = pd.DataFrame([{"pair": name, "mean R@1 %": None if p["mean_r1"] is None else round(100 * p["mean_r1"], 1),
                           "alignment": round(p["alignment"], 3), "modality gap": round(p["modality_gap"], 3),
                           "underperforms": ranked.get(name, {}).get("underperforms")}
                          for name, p in sorted(info["pairs"].items(), key=lambda kv: kv[1]["mean_r1"] or 0)])
    return matrix, pairs


def _md(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False) if len(frame) else "_not measured_"


def render_record_profile(record) -> str:
    parts = [f"### {record.suite} / {record.variant} (seed {record.seed})\n"]
    if not record.ok:
        return parts[0] + f"Failed: {str(record.error).splitlines()[0]}\n"
    for name, reason in record.profile.get("skipped", {}).items():
        parts.append(f"- `profile.{name}` skipped: {reason}")
    sections = [("Latency (p50)", latency_frame(record)), ("Shape scaling", scaling_frame(record)),
                ("FLOPs and MFU", flops_frame(record))]
    phases, components, ops = trace_frames(record)
    trace = record.profile.get("trace")
    if trace:
        info = trace["training"]
        parts.append(f"Trace: `{trace['train_trace']}` and `{trace['inference_trace']}`; step {1e3 * info['step_s']:.1f} ms, "
                     f"phases cover {100 * info['coverage']:.1f}% of it.\n")
    sections += [("Step phases", phases), ("Time by component (per step)", components), ("Top operators by self time", ops)]
    memory_phases, breakdown = memory_frames(record)
    sections += [("Peak memory per phase", memory_phases), ("Memory breakdown (MiB)", breakdown),
                 ("Gradient norms (before clipping)", grad_norm_frame(record))]
    matrix, pairs = alignment_frames(record)
    sections += [("R@1 by query and gallery modality (%)", matrix), ("Modality pairs, worst first", pairs)]
    for title, frame in sections:
        if len(frame):
            parts.append(f"**{title}**\n\n{_md(frame)}\n")
    if "alignment" in record.profile:
        uniformity = ", ".join(f"{m} {v:.3f}" for m, v in record.profile["alignment"]["uniformity"].items())
        parts.append(f"Uniformity (lower is more uniform): {uniformity}\n")
    findings = record.profile.get("diagnosis", [])
    parts.append("**Diagnosis**: " + ("; ".join(f"`{f['rule']}` — {f['message']}" for f in findings)
                                      if findings else "no rule fired (healthy under xmbench's rules)") + "\n")
    telemetry = record.profile.get("telemetry")
    if telemetry:
        parts.append("**GPU telemetry**: " + (str(telemetry["mean"]) + f", energy/step {telemetry['energy_per_step_j']} J"
                                              if telemetry.get("available") else telemetry["reason"]) + "\n")
    return "\n".join(parts)


def has_profile(record) -> bool:
    return bool(record.profile) and any(k not in ("skipped", "diagnosis", "flops", "alignment") for k in record.profile) \
        or any(name.startswith(TIMING_PREFIXES) for name in record.timings)


def render_profile(records) -> str:
    return "## Profile\n\n" + "\n".join(render_record_profile(r) for r in records) + "\n"
