"""Runs a suite: every variant × seed through the stages (xmbench.bench.stages), one record each.

The runner only orchestrates. A variant that fails (bad data, NaN loss, any exception) gets a
record marked failed with its reason, and the suite goes on. A complete record of the same
config is reused unless `force` is set. Derived runs (ensembles, …) run after the variants
they combine, from those variants' artifacts.
"""
from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

from tqdm import tqdm

from xmbench.bench import env
from xmbench.bench.jobs import Job
from xmbench.bench.record import DEFAULT_RECORDS, Record, read_record, slug
from xmbench.errors import XmbenchError
from xmbench.profile.contention import WARN_ABOVE, ContentionMeter
from xmbench.registry import load_builtins
from xmbench.suite import DerivedVariant, Suite, Variant

DEFAULT_ARTIFACTS = Path(".xmbench") / "artifacts"


def run_suite(suite: Suite, records_dir: Path = DEFAULT_RECORDS, artifacts_dir: Path = DEFAULT_ARTIFACTS,
              force: bool = False, progress: bool = True, only: list[str] | None = None,
              isolate: bool = True, timeout_s: float | None = None, executor=None) -> list[Record]:
    """Run every (variant, seed) of the suite, writing one record each; return the records in suite order.

    With `isolate`, each run is its own process with a timeout: a crash, an out-of-memory kill
    or a hang marks that run failed and the suite goes on. Without it, runs share this process
    (faster to start; what the tests use). `executor` (xmbench/bench/executors/) decides where
    the runs go; by default one after another on this machine. Trained variants run first, then
    the derived runs that combine them. A suite that tunes ([tune]) searches first and then runs
    each tuned variant at its chosen point (xmbench.bench.tune).
    """
    from xmbench.bench.executors.local import LocalExecutor

    if suite.tuning:
        from xmbench.bench.tune import run_tuned

        def run(part: Suite, names: list[str] | None) -> list[Record]:
            return run_suite(part, records_dir, artifacts_dir, force, progress, names, isolate, timeout_s, executor)

        return run_tuned(suite, run, Path(records_dir), Path(artifacts_dir), only)
    load_builtins()
    runs = [(v, s) for v, s in suite.runs() if not only or v.name in only]
    executor = executor or LocalExecutor(isolate, progress)
    records: dict[tuple[str, int], Record] = {}
    jobs = []
    for index, (variant, seed) in enumerate(runs, start=1):
        label = f"[{index}/{len(runs)}] {variant.name} seed={seed}"
        record = None if force else _reusable(records_dir, suite.name, variant, seed, label)
        if record:
            _say(f"{label}: reusing complete record ({record.created_at})")
            records[variant.name, seed] = record
        else:
            jobs.append(Job(suite.name, suite.reference_for(variant.name), variant, seed, Path(records_dir),
                            Path(artifacts_dir) / suite.name,
                            timeout_s or suite.timeout_s, label))
    bar = tqdm(total=len(runs), initial=len(records), desc=f"suite {suite.name}", unit="run", disable=not progress)
    for wave in waves(jobs):
        for job, record, seconds in executor.execute(wave, started=lambda job: _say(f"{job.label}: running")):
            outcome = "ok" if record.ok else f"FAILED: {record.error.splitlines()[0]}"
            _say(f"{job.label}: {outcome} in {seconds:.0f} s")
            foreign = record.costs.get("foreign_cpu_share") or 0.0
            if foreign > WARN_ABOVE:
                _say(f"{job.label}: other processes used {foreign:.0%} of the CPUs during this run: its timings are "
                     f"not its own (measure alone; `xmbench run --force --variant {job.variant.name}` to redo it)")
            records[job.variant.name, job.seed] = record
            bar.update(1)
    bar.close()
    return [records[v.name, s] for v, s in runs]


def waves(jobs: list[Job]) -> list[list[Job]]:
    """Jobs in the order their inputs allow: each wave needs only the artifacts of earlier waves
    (a taught variant after its teacher, a derived run after the variants it combines)."""
    names = {job.variant.name for job in jobs}
    done: set[str] = set()
    remaining, ordered = list(jobs), []
    while remaining:
        ready = [j for j in remaining if all(d in done or d not in names for d in j.variant.depends_on)]
        ordered.append(ready)
        done |= {j.variant.name for j in ready}
        remaining = [j for j in remaining if j not in ready]
    return ordered


def _say(message: str) -> None:
    tqdm.write(f"xmbench: {message}", file=sys.stderr)


def _reusable(records_dir: Path, suite: str, variant, seed: int, label: str) -> Record | None:
    """The stored record of this run, when everything that shaped it is as it is now.

    The same config (its id), and the same provenance: package versions, xmbench's code, the
    model factory's code, the data files, no injected fault. A derived run's record must also
    be newer than its inputs' records.
    """
    record = _stored(records_dir, suite, variant.name, seed)
    if record is None or not record.ok or record.variant_id != variant.variant_id:
        return None
    why = env.reuse_refusal(record.env, variant.config)
    if why is None and variant.depends_on:
        inputs = [_stored(records_dir, suite, name, seed) for name in variant.depends_on]
        if any(r is None or r.created_at > record.created_at for r in inputs):
            why = "a variant it is built from (its teacher, its inputs) was run again since"
    if why:
        _say(f"{label}: not reusing the stored record: {why}")
        return None
    return record


def _stored(records_dir: Path, suite: str, name: str, seed: int) -> Record | None:
    path = Path(records_dir) / suite / f"{slug(name)}__seed{seed}.json"
    try:
        return read_record(path) if path.exists() else None
    except XmbenchError:
        return None  # unreadable: run again and overwrite


def artifact_dir(artifacts_dir: Path, variant_name: str, seed: int) -> Path:
    """Where a run's trained model is saved (and a derived run finds its inputs)."""
    return Path(artifacts_dir) / f"{slug(variant_name)}__seed{seed}"


def run_variant(suite: str, variant: Variant | DerivedVariant, seed: int, artifacts_dir: Path, progress: bool = True,
                on_model=None) -> Record:
    """One variant (or derived run) at one seed; any failure becomes a failed record with the reason.

    `on_model(model, test_split)` is called with the final model (the pytest plugin times it).
    """
    base = dict(suite=suite, variant=variant.name, variant_id=variant.variant_id, seed=seed,
                config=variant.record_config(), overrides=variant.overrides)
    started = time.perf_counter()
    try:
        with ContentionMeter() as contention:
            outcome = _execute(variant, seed, artifacts_dir, progress, on_model)
    except XmbenchError as exc:
        return Record(status="failed", error=f"{type(exc).__name__}: {exc}", **base)
    except Exception as exc:  # noqa: BLE001 — a crashing variant must not stop the suite
        detail = traceback.format_exc(limit=-3)
        return Record(status="failed", error=f"{type(exc).__name__}: {exc}\n{detail}", **base)
    if "costs" in outcome:  # the whole run (data, model, training, evaluation, profile): what a suite's run time adds up
        outcome["costs"]["run_wall_s"] = time.perf_counter() - started
        if contention.share is not None and outcome["costs"].get("ranks", 1) == 1:  # other ranks are not foreign
            outcome["costs"]["foreign_cpu_share"] = contention.share
    return Record(status="ok", **base, **outcome)


def _execute(variant: Variant | DerivedVariant, seed: int, artifacts_dir: Path, progress: bool, on_model) -> dict:
    from xmbench.bench.stages import execute, execute_derived
    from xmbench.plugins import import_plugins

    import_plugins(variant.config.plugins)  # a fresh process (a Ray worker, a rank) knows only the built-ins
    artifacts = artifact_dir(artifacts_dir, variant.name, seed)
    if isinstance(variant, DerivedVariant):
        inputs = {name: artifact_dir(artifacts_dir, name, seed) for name in variant.inputs}
        missing = [name for name, path in inputs.items() if not (path / "run.json").exists()]
        if missing:
            raise XmbenchError(f"derived run needs the trained artifacts of {', '.join(missing)} seed {seed}, "
                               f"which are missing (did that variant fail?)")
        return execute_derived(variant.technique, inputs, variant.config, seed, artifacts, progress, on_model)
    teacher = artifact_dir(artifacts_dir, variant.config.train.teacher, seed) if variant.config.train.teacher else None
    return execute(variant.config, seed, artifacts, progress, on_model, f"{variant.variant_id}:{seed}", teacher)
