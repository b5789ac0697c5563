"""The results history: a suite's runs filed under the commit that they measured.

Layout (a folder that can live in the repo or on its own branch):

    <history>/<machine-class>/<suite>/<commit>/<variant>.json              a clean tree's entry
    <history>/<machine-class>/<suite>/<commit>/<variant>.dirty-<stamp>.json a dirty tree's entry

Append-only: an entry is never rewritten. A clean entry is created with `os.link` from a fsynced
temporary file, which fails when the name exists, so two writers never clobber each other and a
reader never sees half a file; the second writer is told the commit is already filed. Dirty
entries get a unique name each and are kept for the trend only, never used as reference points
(they do not say which code produced them).

An entry is compact: per seed, the metric summaries (R@k and mAP per direction, rsum), the
per-query first ranks and average precisions that compare's paired bootstrap needs (the test set
is the same for every seed and commit: the data seed is fixed), each timing's lower decile, median
and spread (compare judges timings process by process on the lower decile), and the deterministic
costs. Raw timing samples, curves and step logs stay in the records.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from xmbench.bench.record import Record, slug
from xmbench.errors import XmbenchError

DEFAULT_HISTORY = Path(".xmbench") / "history"
KIND = "xmbench-history-entry"
VERSION = 1
BUSY_COSTS = ("foreign_cpu_share", "latency_foreign_cpu_share")  # compare leaves crowded processes out by these


@dataclass(frozen=True)
class Commit:
    """A commit as the history names it."""

    sha: str
    date: str  # committer date, ISO 8601
    subject: str


@dataclass
class Entry:
    """One variant's runs (one per seed) at one commit on one machine class."""

    suite: str
    variant: str
    variant_id: str
    commit: str
    date: str
    subject: str
    machine_class: str
    dirty: bool
    runs: list[dict[str, Any]] = field(default_factory=list)
    filed_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    kind: str = KIND
    version: int = VERSION

    @property
    def seeds(self) -> list[int]:
        return [r["seed"] for r in self.runs]

    @property
    def ok(self) -> bool:
        """At least one seed ran; failed seeds are left out of the series."""
        return any(r["status"] == "ok" for r in self.runs)


def git(repo: Path | str, *args: str) -> str:
    """Run git in `repo`; a failure is an XmbenchError with git's own message."""
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise XmbenchError(f"git {' '.join(args)}: {exc}") from None
    if done.returncode:
        raise XmbenchError(f"git {' '.join(args)} in {repo}: {done.stderr.strip() or 'failed'}")
    return done.stdout.strip()


def commit_info(repo: Path | str, rev: str = "HEAD") -> Commit:
    """The commit `rev` names, with its date and subject; an unknown rev is an error naming it."""
    try:
        sha, date, subject = git(repo, "log", "-1", "--format=%H%x00%cI%x00%s", f"{rev}^{{commit}}", "--").split("\0", 2)
    except XmbenchError:
        raise XmbenchError(f"unknown revision '{rev}' in {repo}") from None
    return Commit(sha, date, subject)


def run_summary(record: Record) -> dict[str, Any]:
    """What an entry keeps of one record (see the module docstring)."""
    run: dict[str, Any] = {"seed": record.seed, "status": record.status}
    if not record.ok:
        run["error"] = (record.error or "").splitlines()[0] if record.error else ""
        return run
    run["metrics"] = record.metrics
    run["per_query"] = {d: {"first_rank": [int(x) for x in q["first_rank"]], "ap": [round(float(x), 6) for x in q["ap"]]}
                        for d, q in record.per_query.items() if "first_rank" in q and "ap" in q}
    run["timings"] = {name: _timing_summary(t["samples"]) for name, t in record.timings.items() if t.get("samples")}
    run["costs"] = {k: v for k, v in record.costs.items()
                    if isinstance(v, int | float) and not isinstance(v, bool) and (_exact(k) or k in BUSY_COSTS)}
    return run


def _exact(name: str) -> bool:
    from xmbench.bench.compare import EXACT_COST_PREFIXES, EXACT_COSTS

    return name in EXACT_COSTS or name.startswith(EXACT_COST_PREFIXES)


def _timing_summary(samples: list[float]) -> dict[str, float]:
    p10, p25, p50, p75, p90 = np.percentile(np.asarray(samples, dtype=float), [10, 25, 50, 75, 90])
    return {"p10": float(p10), "p25": float(p25), "p50": float(p50), "p75": float(p75), "p90": float(p90),
            "n": len(samples)}


def make_entries(records: list[Record], commit: Commit, machine: str, dirty: bool) -> list[Entry]:
    """One entry per variant of the records, its runs in seed order."""
    by_variant: dict[str, list[Record]] = {}
    for record in records:
        by_variant.setdefault(record.variant, []).append(record)
    return [Entry(runs[0].suite, variant, runs[0].variant_id, commit.sha, commit.date, commit.subject, machine, dirty,
                  [run_summary(r) for r in sorted(runs, key=lambda r: r.seed)])
            for variant, runs in by_variant.items()]


def suite_dir(history: Path, machine: str, suite: str) -> Path:
    return Path(history) / machine / suite


def entry_path(history: Path, entry: Entry) -> Path:
    folder = suite_dir(history, entry.machine_class, entry.suite) / entry.commit
    if entry.dirty:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        return folder / f"{slug(entry.variant)}.dirty-{stamp}-{os.getpid()}.json"
    return folder / f"{slug(entry.variant)}.json"


def file_entry(history: Path, entry: Entry) -> Path | None:
    """Create the entry's file; None when this commit × variant is already filed (append-only)."""
    path = entry_path(history, entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(entry), f, sort_keys=True, separators=(",", ":"), allow_nan=False)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # atomic and exclusive: fails if another writer got there first
        except FileExistsError:
            return None
        return path
    finally:
        Path(tmp).unlink(missing_ok=True)


def read_entry(path: Path) -> Entry:
    """Parse one entry file; a corrupt or foreign file is an error naming it."""
    try:
        payload = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise XmbenchError(f"{path}: not a readable history entry: {exc}") from None
    if not isinstance(payload, dict) or payload.get("kind") != KIND:
        raise XmbenchError(f"{path}: not an xmbench history entry (kind is not '{KIND}')")
    if payload.get("version") != VERSION:
        raise XmbenchError(f"{path}: history entry version {payload.get('version')} is not the supported {VERSION}")
    try:
        return Entry(**payload)
    except TypeError as exc:
        raise XmbenchError(f"{path}: malformed history entry: {exc}") from None


def read_entries(history: Path, machine: str, suite: str) -> list[Entry]:
    """Every entry of a suite on a machine class, clean and dirty."""
    folder = suite_dir(history, machine, suite)
    return [read_entry(p) for p in sorted(folder.glob("*/*.json")) if not p.name.startswith(".")]


def clean_entry(history: Path, machine: str, suite: str, commit: str, variant: str) -> Entry | None:
    """The clean entry of one commit × variant, if filed (bisection reuses it)."""
    path = suite_dir(history, machine, suite) / commit / f"{slug(variant)}.json"
    return read_entry(path) if path.exists() else None
