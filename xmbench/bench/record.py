"""Records: one versioned JSON file per variant × seed, written atomically.

A record holds everything needed to compare runs later: the resolved config and its id, the
environment, quality metrics (with per-query ranks for paired statistics), costs and the
learning curve. A write goes to a temporary file in the same folder, is fsynced, then renamed
over the target, so a crash or SIGKILL leaves either the old file or the new one, never half.
"""
from __future__ import annotations

import gzip
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from xmbench.errors import XmbenchError

SCHEMA_VERSION = 1
DEFAULT_RECORDS = Path(".xmbench") / "records"


@dataclass
class Record:
    suite: str
    variant: str
    variant_id: str
    seed: int
    status: str  # "ok" or "failed"
    config: dict[str, Any]
    overrides: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    env: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)  # {direction: {metric: value}, "rsum": x}
    costs: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → Measurement.to_dict()
    curve: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    per_query: dict[str, dict[str, list]] = field(default_factory=dict)
    foundation: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)  # the profile stage: analyses shown in reports
    reference: str | None = None  # the suite's reference variant, which reports compare this one with
    tuning: dict[str, Any] = field(default_factory=dict)  # a tuned run's search ([tune]): points, scores, choice, cost
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    schema_version: int = SCHEMA_VERSION

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def filename(self) -> str:
        return f"{slug(self.variant)}__seed{self.seed}.json"


def slug(name: str) -> str:
    """A file-safe form of a variant name (matrix labels hold brackets and '=')."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


def write_json_atomic(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; records and baselines are shared files
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=1, sort_keys=True, allow_nan=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_record(record: Record, directory: Path) -> Path:
    path = Path(directory) / record.suite / record.filename()
    write_json_atomic(path, asdict(record))
    return path


def read_record(path: Path) -> Record:
    """Parse one record file; a corrupt or foreign file gets an error naming it."""
    try:
        raw = Path(path).read_bytes()
        payload = json.loads(gzip.decompress(raw) if Path(path).suffix == ".gz" else raw)
    except (OSError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise XmbenchError(f"{path}: not a readable record: {exc}") from None
    if not isinstance(payload, dict) or "schema_version" not in payload:
        raise XmbenchError(f"{path}: not an xmbench record (no schema_version)")
    if payload["schema_version"] != SCHEMA_VERSION:
        raise XmbenchError(f"{path}: record schema {payload['schema_version']} is not the supported "
                           f"{SCHEMA_VERSION}; re-run the suite to refresh it")
    try:
        return Record(**payload)
    except TypeError as exc:
        raise XmbenchError(f"{path}: malformed record: {exc}") from None


def record_paths(directory: Path, suite: str | None = None) -> list[Path]:
    """The record files of a folder; gzipped ones (`.json.gz`) too, so that a long run's records
    can be archived beside its committed report (reports/records/) and reported from there."""
    root = Path(directory)
    folder = suite or "*"
    paths = [*root.glob(f"{folder}/*.json"), *root.glob(f"{folder}/*.json.gz")]
    return sorted(p for p in paths if not p.name.startswith("."))


def read_records(directory: Path, suite: str | None = None) -> list[Record]:
    return [read_record(p) for p in record_paths(directory, suite)]
