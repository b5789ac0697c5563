"""A job: one variant × seed to run, where its record and artifacts go, and how to run it here.

Executors (xmbench/bench/executors/) decide where jobs run — one isolated process at a time, a
pool of them, a Ray cluster — but every job ends the same way: `run_here` in some process writes
a complete record atomically, and when that process dies or runs past its time, `fail` writes
a failed record saying why.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from xmbench.bench.record import Record, slug, write_record


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
