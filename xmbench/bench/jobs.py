"""A job: one variant × seed to run, where its record and artifacts go, and how to run it here.

Executors (xmbench/bench/executors/) decide where jobs run — one isolated process at a time, a
pool of them, a Ray cluster — but every job ends the same way: `run_here` in some process writes
a complete record atomically, and when that process dies or runs past its time, `fail` writes
a failed record saying why.
"""
from __future__ import annotations

import contextlib
import pickle
from dataclasses import dataclass, field
from pathlib import Path

from xmbench.bench.record import Record, slug, write_record
from xmbench.errors import XmbenchError


@dataclass
class Job:
    suite: str
    reference: str | None
    variant: object  # xmbench.suite.Variant or DerivedVariant
    seed: int
    records_dir: Path
    artifacts_dir: Path  # the suite's artifacts folder
    timeout_s: float
    label: str = ""
    environ: dict[str, str] = field(default_factory=dict)  # this run's own settings (threads, GPU)

    @property
    def record_path(self) -> Path:
        return Path(self.records_dir) / self.suite / f"{slug(self.variant.name)}__seed{self.seed}.json"

    @property
    def derived(self) -> bool:
        from xmbench.suite import DerivedVariant

        return isinstance(self.variant, DerivedVariant)

    def run_here(self, progress: bool = False, on_model=None) -> Record:
        """Run the job in this process and write its record."""
        from xmbench.bench import env
        from xmbench.bench.runner import run_variant
        from xmbench.train import distributed

        record = run_variant(self.suite, self.variant, self.seed, self.artifacts_dir, progress, on_model)
        if not distributed.is_main():
            return record  # on several ranks, rank 0 writes the record
        record.env = env.capture(self.variant.config)
        record.reference = self.reference
        write_record(record, self.records_dir)
        return record

    def fail(self, error: str) -> Record:
        """The record of a run that ended without writing its own (crash, kill, timeout)."""
        record = Record(suite=self.suite, variant=self.variant.name, variant_id=self.variant.variant_id, seed=self.seed,
                        status="failed", config=self.variant.record_config(), overrides=self.variant.overrides,
                        error=error, reference=self.reference)
        write_record(record, self.records_dir)
        return record


def freeze(job: Job) -> bytes:
    """The job as bytes for another process, which reads it back with `thaw`.

    A config naming plugins holds their options classes, pickled by reference to the plugin's
    module: the other process can unpickle them only once it has the working folder on sys.path
    and the plugins imported, so the job travels as bytes beside the plugin list.
    """
    return pickle.dumps((list(job.variant.config.plugins), pickle.dumps(job)))


def thaw(frozen: bytes) -> Job:
    """The job `freeze` wrote, its plugins imported first (call it once the working folder is on sys.path)."""
    from xmbench.plugins import import_plugins

    plugins, job = pickle.loads(frozen)
    with contextlib.suppress(XmbenchError):  # a plugin that fails here fails the run, with its reason, when it starts
        import_plugins(plugins)
    return pickle.loads(job)
