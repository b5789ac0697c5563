"""The profile stage: what `[profile]` switches on, run after evaluation (and probes during training).

`step_probes` builds the probes that watch every training step (gradient norms, the memory
tracer, GPU telemetry); `run_profile` measures the trained model (latency, shape scaling,
FLOPs and MFU, alignment, traces) and gathers everything into three parts of the record:
`timings` (latency samples, compared statistically), `costs` (deterministic figures such as
FLOPs and bytes, compared exactly) and `profile` (the rest, shown in reports).
"""
from __future__ import annotations

import dataclasses
import statistics
import sys
from pathlib import Path

import torch

from xmbench.config import RunConfig
from xmbench.profile import dynamics, flops, latency, scaling, trace
from xmbench.profile.loading import LoadingProbe
from xmbench.profile.memory_trace import MemoryProbe
from xmbench.profile.telemetry import GpuTelemetry, nvml_unavailable_reason


def step_probes(config: RunConfig) -> dict[str, object]:
    cfg = config.profile
    probes: dict[str, object] = {"loading": LoadingProbe()}
    if cfg.grad_norms:
        probes["grad_norms"] = dynamics.GradNormProbe()
    if cfg.memory:
        probes["memory"] = MemoryProbe(snapshot=cfg.memory_snapshot)
    if cfg.telemetry:
        probes["telemetry"] = GpuTelemetry()
    return probes


def skipped_for_hardware(config: RunConfig) -> dict[str, str]:
    """Switches that need a GPU on a machine without one: a clear message each, not a crash."""
    skipped = {}
    if config.profile.memory_snapshot and not torch.cuda.is_available():
        skipped["memory_snapshot"] = "needs CUDA (torch.cuda.memory._record_memory_history); this machine has none"
    reason = nvml_unavailable_reason() if config.profile.telemetry else None
    if reason:  # the same check the telemetry probe makes, so the two never disagree
        skipped["telemetry"] = f"needs an NVIDIA GPU and NVML: {reason}"
    for name, reason in skipped.items():
        print(f"xmbench: profile.{name} skipped: {reason}", file=sys.stderr)
    return skipped


def sample_batches(split, modalities, batch_size: int = 8) -> dict[str, dict[str, torch.Tensor]]:
    rows = {m: latency.cycled_rows(split.n_rows(m), batch_size) for m in modalities}
    return {m: split.rows(m, rows[m]) for m in modalities}


def run_profile(model, config: RunConfig, *, train_split, test_split, train_result, probes: dict, pairs,
                embeddings: dict, metrics: dict, evaluation_memory: dict | None, run_name: str, train_again) -> dict:
    """Everything the profile section asks for; returns {"timings", "costs", "profile"}.

    `embeddings` are the evaluation's (reused, not recomputed); `evaluation_memory` is the
    PeakMemory result measured around the evaluation, the tracer's "evaluation" phase.
    """
    from xmbench.models import capabilities
    from xmbench.models.model import to_device

    cfg = config.profile
    device = capabilities.device_of(model)
    modalities = [m for m in test_split.modalities if m in getattr(model, "modalities", ())]
    out: dict = {"timings": {}, "costs": {}, "profile": {"skipped": skipped_for_hardware(config)}}
    profile = out["profile"]
    batches = {m: to_device(b, device) for m, b in sample_batches(test_split, modalities).items()}

    if "loading" in probes:
        profile["loading"] = probes["loading"].result(train_result.steps)
    if "grad_norms" in probes:
        profile["grad_norms"] = probes["grad_norms"].result()
    profile["diagnosis"] = [f.to_dict() for f in dynamics.diagnose([s.loss for s in train_result.steps],
                                                                      [vars(p) for p in train_result.curve])]
    if "memory" in probes:
        profile["memory"] = probes["memory"].result()
        if evaluation_memory:
            profile["memory"]["per_phase"]["evaluation"] = {
                "peak_mb": evaluation_memory["cuda_peak_mb"] or evaluation_memory["peak_rss_mb"],
                "growth_mb": evaluation_memory["rss_growth_mb"]}
        snapshot = probes["memory"].dump_snapshot(Path(cfg.trace_dir) / f"{run_name}.memory.pickle")
        if snapshot:
            profile["memory"]["snapshot"] = snapshot
        for component, parts in profile["memory"]["breakdown_bytes"].items():
            for part, value in parts.items():
                if part != "activations":  # weights, gradients, optimizer state: deterministic
                    out["costs"][f"mem.{component}.{part}_bytes"] = value
    if "telemetry" in probes:
        profile["telemetry"] = probes["telemetry"].result()
    if cfg.alignment and embeddings and not capabilities.can_score(model):  # geometry is not what a scorer ranks by
        from xmbench.eval.analysis import analyse_alignment

        row_items = {m: test_split.caption_item if m == "text" else torch.arange(len(test_split)) for m in embeddings}
        profile["alignment"] = analyse_alignment(embeddings, row_items, metrics)
    if cfg.flops:
        per_sample = flops.tower_flops_per_sample(model, batches)
        out["costs"].update({f"flops.{m}_per_sample": int(v) for m, v in per_sample.items()})
        profile["flops"] = _training_utilisation(model, config, train_split, train_result, pairs, device)
        profile["flops"]["per_sample_forward"] = per_sample
    if cfg.latency:
        probed = latency.probe_latency(model, test_split, config.eval.directions, cfg.batch_sizes,
                                       cfg.min_repeats, cfg.min_time_s, galleries=embeddings)
        out["timings"].update({name: m.to_dict() for name, m in probed.items()})
    if cfg.shape_scaling:
        profile["shape_scaling"] = scaling.probe_shape_scaling(model, config)
    if cfg.trace:
        directory = trace.writable_directory(Path(cfg.trace_dir) / Path(run_name).parent)
        stem = directory / Path(run_name).name
        training = trace.trace_training(train_again, cfg.trace_steps, Path(f"{stem}.train.json"))
        inference = trace.trace_inference(model, batches, Path(f"{stem}.inference.json"))
        profile["trace"] = {"train_trace": f"{stem}.train.json", "inference_trace": f"{stem}.inference.json",
                            "training": training, "inference": inference}
    return out


def _training_utilisation(model, config: RunConfig, train_split, train_result, pairs, device) -> dict:
    """FLOPs of one representative training step (forward + backward), over the measured step time."""
    from xmbench.models import capabilities
    from xmbench.train.engine import make_batch
    from xmbench.train.step import TrainingStep

    if getattr(model, "quantized", None):  # int8 layers have no backward: a training step means nothing here
        return {"train_step_flops": None, "peak_flops_per_s": None, "mfu": None,
                "note": "quantised after training: no training step to count"}
    training_step = TrainingStep(model, config.train, pairs)
    batch = make_batch(train_split, torch.arange(min(config.train.batch_size, len(train_split))),
                       training_step.modalities, torch.Generator().manual_seed(0), device)
    was_training = capabilities.set_training(model, True)
    def step() -> None:
        total = training_step(batch).total
        if total.requires_grad:  # a model with nothing to train has no backward
            total.backward()

    step_flops = flops.training_step_flops(step) if pairs else 0
    for p in capabilities.parameters(model):
        p.grad = None
    capabilities.set_training(model, was_training)
    step_times = [s.seconds for s in train_result.steps]
    peak = flops.matmul_peak_flops(device=device.type)
    if not step_times:
        return {"train_step_flops": float(step_flops), "peak_flops_per_s": peak, "mfu": None}
    return flops.utilisation(step_flops, statistics.median(step_times), peak)


def trace_config(config: RunConfig) -> RunConfig:
    """The config `xmbench profile` runs: the trace plus every probe that works on this machine."""
    profile = dataclasses.replace(config.profile, trace=True, latency=True, memory=True, grad_norms=True,
                                  flops=True, alignment=True, shape_scaling=True)
    return dataclasses.replace(config, profile=profile)
