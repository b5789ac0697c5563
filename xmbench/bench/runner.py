"""Runs a suite: for each variant × seed, data → model → train → evaluate → record.

The runner only orchestrates: each stage is a function of the stage before. A variant that
fails (bad data, NaN loss, any exception) gets a record marked failed with its reason, and the
suite goes on. A complete record of the same config is reused unless `force` is set.
"""
from __future__ import annotations

import random
import statistics
import sys
import time
import traceback
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from tqdm import tqdm

from xmbench.bench import env, faults, isolated
from xmbench.bench.record import DEFAULT_RECORDS, Record, read_record, slug, write_record
from xmbench.config import RunConfig
from xmbench.data.sources import load_split
from xmbench.errors import XmbenchError
from xmbench.eval.retrieval import direction_modalities, encode_split, evaluate_embeddings, evaluate_model
from xmbench.models.model import (
    build_reference,
    load_user_model,
    model_device,
    resolve_device,
    to_device,
    total_parameters,
    trainable_parameters,
)
from xmbench.models.peft import save_adapter
from xmbench.profile.latency import query_path, time_callable
from xmbench.profile.measurement import Measurement
from xmbench.profile.memory import PeakMemory
from xmbench.profile.stage import run_profile, step_probes
from xmbench.registry import LOSSES, load_builtins
from xmbench.suite import Suite, Variant
from xmbench.train.engine import logit_scale, train
from xmbench.train.foundation import foundation_state

DEFAULT_ARTIFACTS = Path(".xmbench") / "artifacts"


def run_suite(suite: Suite, records_dir: Path = DEFAULT_RECORDS, artifacts_dir: Path = DEFAULT_ARTIFACTS,
              force: bool = False, progress: bool = True, only: list[str] | None = None,
              isolate: bool = True, timeout_s: float | None = None) -> list[Record]:
    """Run every (variant, seed) of the suite, writing one record each; return the records.

    With `isolate`, each run is its own process with a timeout: a crash, an out-of-memory kill
    or a hang marks that run failed and the suite goes on. Without it, runs share this process
    (faster to start; what the tests use).
    """
    load_builtins()
    runs = [(v, s) for v, s in suite.runs() if not only or v.name in only]
    records = []
    bar = tqdm(total=len(runs), desc=f"suite {suite.name}", unit="run", disable=not progress)
    for index, (variant, seed) in enumerate(runs, start=1):
        label = f"[{index}/{len(runs)}] {variant.name} seed={seed}"
        record = None if force else _reusable(records_dir, suite.name, variant, seed)
        if record:
            _say(f"{label}: reusing complete record ({record.created_at})")
        else:
            _say(f"{label}: running")
            started = time.perf_counter()
            record = _run_one(suite, variant, seed, records_dir, artifacts_dir / suite.name, isolate, timeout_s, progress)
            outcome = "ok" if record.ok else f"FAILED: {record.error.splitlines()[0]}"
            _say(f"{label}: {outcome} in {time.perf_counter() - started:.0f} s")
        records.append(record)
        bar.update(1)
    bar.close()
    return records


def _run_one(suite: Suite, variant: Variant, seed: int, records_dir: Path, artifacts_dir: Path, isolate: bool,
             timeout_s: float | None, progress: bool) -> Record:
    """One run, in a child process (which writes the record) or in this one."""
    if isolate:
        return isolated.run(suite.name, variant, seed, records_dir, artifacts_dir, timeout_s or suite.timeout_s)
    record = run_variant(suite.name, variant, seed, artifacts_dir, progress)
    record.env = env.capture()
    write_record(record, records_dir)
    return record


def _say(message: str) -> None:
    tqdm.write(f"xmbench: {message}", file=sys.stderr)


def _reusable(records_dir: Path, suite: str, variant: Variant, seed: int) -> Record | None:
    path = Path(records_dir) / suite / f"{slug(variant.name)}__seed{seed}.json"
    if not path.exists():
        return None
    try:
        record = read_record(path)
    except XmbenchError:
        return None  # unreadable: run again and overwrite
    return record if record.ok and record.variant_id == variant.variant_id else None


def run_variant(suite: str, variant: Variant, seed: int, artifacts_dir: Path, progress: bool = True,
                on_model=None) -> Record:
    """One variant at one seed; any failure becomes a failed record with the reason.

    `on_model(model, test_split)` is called with the trained model (the pytest plugin times it).
    """
    base = dict(suite=suite, variant=variant.name, variant_id=variant.variant_id, seed=seed,
                config=variant.config.to_dict(), overrides=variant.overrides)
    try:
        outcome = execute(variant.config, seed, artifacts_dir / f"{slug(variant.name)}__seed{seed}", progress, on_model)
    except XmbenchError as exc:
        return Record(status="failed", error=f"{type(exc).__name__}: {exc}", **base)
    except Exception as exc:  # noqa: BLE001 — a crashing variant must not stop the suite
        detail = traceback.format_exc(limit=-3)
        return Record(status="failed", error=f"{type(exc).__name__}: {exc}\n{detail}", **base)
    return Record(status="ok", **base, **outcome)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def execute(config: RunConfig, seed: int, artifacts: Path, progress: bool = True, on_model=None) -> dict:
    """data → model → train → evaluate; returns the record fields it measured."""
    load_builtins()
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    # data
    train_split = load_split(config.data, "train")
    val_split = load_split(config.data, "val")
    test_split = load_split(config.data, config.eval.split)
    modalities = train_split.modalities
    # model
    foundation: dict = {}
    if config.model.factory == "reference":
        state = None
        if config.foundation.enabled:
            state, foundation = foundation_state(config, progress)
        seed_everything(seed)  # adapter initialisation depends on the run seed only
        model = build_reference(config, modalities, state)
    else:
        seed_everything(seed)
        model = load_user_model(config)
    model.to(resolve_device(config.train.device))
    pairs = config.train.modality_pairs(modalities)
    # train (with the per-step probes the profile section asks for)
    probes = step_probes(config)
    memory = PeakMemory()
    with memory.track():
        result = train(model, train_split, config.train, seed=seed, pairs=pairs,
                       validate=_validator(config, val_split, pairs), progress=progress, probes=list(probes.values()))
    faults.inject(model)  # no-op unless XMBENCH_FAULT is set (validating the gates)
    # evaluate (its peak memory is a phase of the memory tracer, sampled only when that is on)
    eval_memory = PeakMemory(interval_s=0.005) if config.profile.memory else None
    started = time.perf_counter()
    with eval_memory.track() if eval_memory else nullcontext():
        metrics, per_query, embeddings = evaluate_model(model, test_split, config.eval.directions, tuple(config.eval.ks),
                                                        config.eval.chunk_size, config.eval.batch_size)
    eval_s = time.perf_counter() - started
    timings = {"query_latency_s": time_callable(query_function(model, test_split, config, embeddings), warmup=3,
                                                min_count=20, min_time_s=0.5).to_dict()} if metrics.keys() - {"rsum"} else {}
    if on_model:
        on_model(model, test_split)
    adapter_bytes = save_artifacts(model, artifacts)
    step_seconds = [s.seconds for s in result.steps]
    if step_seconds:
        timings["step_time_s"] = Measurement("s", step_seconds).to_dict()
    costs = {
        "train_wall_s": result.wall_s,
        "train_steps": len(result.steps),
        "step_time_s": statistics.median(step_seconds) if step_seconds else None,
        "samples_per_s": statistics.median(s.samples_per_s for s in result.steps) if result.steps else None,
        "eval_wall_s": eval_s,
        "trainable_params": trainable_parameters(model),
        "total_params": total_parameters(model),
        "adapter_bytes": adapter_bytes,
        **memory.result(),
    }
    # profile: the trained model measured (it may train a few more steps for a trace: artifacts are saved)
    def train_again(extra_probes):
        steps = replace(config.train, steps=config.profile.trace_steps + 1, eval_every=0, checkpoint_every=0)
        train(model, train_split, steps, seed=seed, pairs=pairs, progress=False, probes=extra_probes)

    profiled = run_profile(model, config, train_split=train_split, test_split=test_split, train_result=result,
                           probes=probes, pairs=pairs, embeddings=embeddings, metrics=metrics,
                           evaluation_memory=eval_memory.result() if eval_memory else None,
                           run_name=f"{artifacts.parent.name}/{artifacts.name}", train_again=train_again)
    timings.update(profiled["timings"])
    costs.update(profiled["costs"])
    return {
        "metrics": metrics, "costs": costs, "timings": timings, "foundation": foundation, "profile": profiled["profile"],
        "curve": [vars(p) for p in result.curve], "steps": [vars(s) for s in result.steps],
        "per_query": {d: {"first_rank": r.first_rank.tolist(), "ap": [round(x, 6) for x in r.average_precision.tolist()]}
                      for d, r in per_query.items()},
    }


def _validator(config: RunConfig, val_split, pairs):
    """Validation point of the learning curve: loss on fixed val batches and R@1 per direction."""
    loss_fn = LOSSES.get(config.train.loss)
    size = min(config.train.batch_size, len(val_split))

    @torch.inference_mode()
    def validate(model) -> tuple[float, dict[str, float]]:
        modalities = {m for p in pairs for m in p}
        embeddings = {m: encode_split(model, val_split, m, config.eval.batch_size) for m in modalities}
        metrics, _ = evaluate_embeddings(embeddings, val_split, config.eval.directions, (1,), config.eval.chunk_size)
        if "text" in embeddings:  # in the loss, the first caption of each item stands for it
            embeddings["text"] = embeddings["text"][val_split.caption_offsets[:-1]]
        losses = [loss_fn({m: e[i:i + size] for m, e in embeddings.items()}, logit_scale(model), pairs)[0].item()
                  for i in range(0, len(val_split) - size + 1, size)]
        return sum(losses) / len(losses), {d: m["R@1"] for d, m in metrics.items() if isinstance(m, dict)}

    return validate


def query_function(model, split, config: RunConfig, embeddings: dict | None = None):
    """The online path of the first direction: one query encoded, scored against the gallery, top-10.

    `embeddings` (modality → the split's embeddings, from the evaluation) spares encoding the gallery again.
    """
    direction = next(d for d in config.eval.directions if set(direction_modalities(d)) <= set(split.modalities))
    query, gallery = direction_modalities(direction)
    device = model_device(model)
    gallery_emb = (embeddings or {}).get(gallery)
    if gallery_emb is None:
        gallery_emb = encode_split(model, split, gallery, config.eval.batch_size)
    gallery_emb = gallery_emb.to(device)
    return query_path(model, to_device(split.rows(query, torch.tensor([0])), device), query, gallery_emb)


def save_artifacts(model, directory: Path) -> int | None:
    """Adapters in peft's format per tower, plus heads and temperature; returns adapter bytes."""
    if not hasattr(model, "towers"):
        return None
    directory.mkdir(parents=True, exist_ok=True)
    total = 0
    for modality, tower in model.towers.items():
        target = directory / "adapters" / modality
        if save_adapter(tower.backbone, target):
            total += sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
    heads = {f"heads.{k}": v.detach().contiguous() for k, v in model.heads.state_dict().items()}
    heads["log_logit_scale"] = model.log_logit_scale.detach().reshape(1)
    save_file(heads, str(directory / "heads.safetensors"))
    return total
