"""Records as a pandas DataFrame: one row per variant × seed, flat metric and cost columns."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from xmbench.bench.record import DEFAULT_RECORDS, Record, read_records
from xmbench.config import DIRECTIONS
from xmbench.errors import XmbenchError

QUALITY = ("R@1", "R@5", "R@10", "mAP")
COSTS = ("train_wall_s", "step_time_s", "samples_per_s", "query_latency_ms", "peak_rss_mb", "trainable_params",
         "total_params", "adapter_bytes")


def records_frame(records: list[Record]) -> pd.DataFrame:
    """Columns: suite, variant, variant_id, seed, status, error, '<dir> <metric>', rsum, costs."""
    rows = []
    for r in records:
        row = {"suite": r.suite, "variant": r.variant, "variant_id": r.variant_id, "seed": r.seed,
               "status": r.status, "error": r.error}
        for direction in DIRECTIONS:
            for metric, value in r.metrics.get(direction, {}).items():
                if isinstance(value, (int, float)):
                    row[f"{direction} {metric}"] = value
        row["rsum"] = r.metrics.get("rsum")
        row.update({k: v for k, v in r.costs.items() if isinstance(v, (int, float)) or v is None})
        latency = r.timings.get("query_latency_s", {}).get("p50")
        row["query_latency_ms"] = None if latency is None else 1e3 * latency
        rows.append(row)
    return pd.DataFrame(rows)


def load_records(directory: str | Path = DEFAULT_RECORDS, suite: str | None = None) -> pd.DataFrame:
    """Stored records as a DataFrame (see `records_frame` for the columns).

    A folder that does not exist, or a suite with no records there, is an error: an empty frame
    would pass for "nothing ran".
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise XmbenchError(f"{directory}: no records folder here (records go to {DEFAULT_RECORDS} by default)")
    records = read_records(directory, suite)
    if not records:
        raise XmbenchError(f"{directory}: no records{f' of suite {suite!r}' if suite else ''} in this folder")
    return records_frame(records)
