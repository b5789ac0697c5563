"""The stages of one run, each a function of the stage before: data → model → train → transforms →
evaluate → profile → record fields. `execute` chains them for a variant; `execute_derived` for a
derived run, whose model is built from other variants' artifacts instead of trained.
"""
from __future__ import annotations

import statistics
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from xmbench.bench import faults
from xmbench.config import RunConfig
from xmbench.data.cache import cache_root
from xmbench.data.preprocess import EncodedSplit
from xmbench.data.sources import load_split
from xmbench.eval.retrieval import direction_modalities, encode_for_directions, encode_split_states, evaluate_embeddings
from xmbench.models import capabilities
from xmbench.models.artifacts import save_artifacts
from xmbench.models.model import build_model, resolve_device, to_device
from xmbench.profile import machine_reference
from xmbench.profile.contention import ContentionMeter
from xmbench.profile.latency import query_path, time_interleaved
from xmbench.profile.measurement import Measurement
from xmbench.profile.memory import PeakMemory
from xmbench.profile.stage import run_profile, step_probes
from xmbench.registry import CALLBACKS, TRANSFORMS, load_builtins
from xmbench.train import checkpoint, distributed
from xmbench.train.engine import TrainResult, train
from xmbench.train.step import TrainingStep


@dataclass
class RunData:
    train: EncodedSplit
    val: EncodedSplit | None  # only when the learning curve has validation points
    test: EncodedSplit

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.train.modalities


@dataclass
class Evaluation:
    metrics: dict
    per_query: dict
    embeddings: dict[str, torch.Tensor]
    states: dict[str, torch.Tensor] | None  # the rows' states, for a model that reads them (fusion before projection)
    seconds: float
    memory: dict | None  # the evaluation's peak memory, measured when the memory tracer is on


def load_data(config: RunConfig) -> RunData:
    validating = config.train.eval_every and config.train.steps
    return RunData(load_split(config.data, "train"), load_split(config.data, "val") if validating else None,
                   load_split(config.data, config.eval.split))


def prepare_model(config: RunConfig, data: RunData, seed: int, progress: bool = True):
    """The model the config names, on the configured device; returns (model, foundation facts)."""
    model, foundation = build_model(config, data.modalities, seed, progress)
    return capabilities.move(model, resolve_device(config.train.device)), foundation


def load_teacher(folder: Path, config: RunConfig):
    """The teaching variant rebuilt from its artifacts: a function from a batch to its embeddings (no gradient)."""
    from xmbench.errors import XmbenchError
    from xmbench.models.artifacts import load_artifacts

    if not (folder / "run.json").exists():
        raise XmbenchError(f"train.teacher: the teacher '{config.train.teacher}' has no trained artifacts at {folder} "
                           f"(did it fail?)")
    teacher = apply_transforms(load_artifacts(folder, resolve_device(config.train.device)), config)
    capabilities.set_training(teacher, False)

    @torch.no_grad()
    def embed(batch) -> dict[str, torch.Tensor]:
        return {m: capabilities.encode(teacher, m, x) for m, x in batch.inputs.items() if m in teacher.modalities}

    return embed


def feature_cache(model, config: RunConfig):
    """The frozen towers' feature cache while training (train.feature_cache_mb > 0), else nothing."""
    if not config.train.feature_cache_mb:
        return nullcontext({})
    return capabilities.frozen_feature_cache(model, cache_root() / "features", config.train.feature_cache_mb)


def train_model(model, config: RunConfig, data: RunData, seed: int, *, checkpoint_dir: Path | None, identity: str,
                progress: bool, probes: dict, teacher=None) -> TrainResult:
    """The engine with the suite's callbacks and the profile's probes; resumes from this run's checkpoint."""
    pairs = trained_pairs(model, config, data)
    callbacks = ([CALLBACKS.bind(choice)() for choice in config.train.callbacks] + capabilities.training_callbacks(model)
                 + list(probes.values()))
    validate = validator(config, data.val, pairs) if data.val is not None else None
    result = train(model, data.train, config.train, seed=seed, pairs=pairs, validate=validate,
                   checkpoint_dir=checkpoint_dir, checkpoint_identity=identity, progress=progress, callbacks=callbacks,
                   teacher=teacher)
    if checkpoint_dir is not None:
        checkpoint.remove(checkpoint_dir)
    return result


def trained_pairs(model, config: RunConfig, data: RunData) -> list[tuple[str, str]]:
    """The configured pairs whose two modalities both the data and the model have."""
    return config.train.modality_pairs([m for m in data.modalities if m in model.modalities])


def apply_transforms(model, config: RunConfig):
    """The post-training transforms, in the order the config lists them."""
    for choice in config.transforms:
        model = TRANSFORMS.bind(choice)(model)
    return model


def evaluate(model, config: RunConfig, split: EncodedSplit) -> Evaluation:
    """All directions on the evaluation split (its peak memory is a phase of the memory tracer, sampled only when on)."""
    memory = PeakMemory(interval_s=0.005) if config.profile.memory else None
    started = time.perf_counter()
    with memory.track() if memory else nullcontext():
        embeddings, states = encode_for_directions(model, split, config.eval.directions, config.eval.batch_size)
        metrics, per_query = evaluate_embeddings(embeddings, split, config.eval.directions, tuple(config.eval.ks),
                                                 config.eval.chunk_size, model, states)
    return Evaluation(metrics, per_query, embeddings, states, time.perf_counter() - started,
                      memory.result() if memory else None)


def validator(config: RunConfig, val_split: EncodedSplit, pairs):
    """Validation point of the learning curve: the training objective on fixed val batches, R@1 per direction."""
    size = min(config.train.batch_size, len(val_split))

    @torch.inference_mode()
    def validate(model, trained_step=None) -> tuple[float, dict[str, float]]:
        step = TrainingStep(model, config.train, pairs)  # the configured objective, not a callback's current one
        if trained_step is not None:  # but the loss's own learnt values (a sigmoid loss's bias) as trained
            step.loss_parameters = trained_step.loss_parameters
        embeddings, states = capabilities.embeddings_and_states(
            {m: encode_split_states(model, val_split, m, config.eval.batch_size) for m in step.modalities})
        metrics, _ = evaluate_embeddings(embeddings, val_split, config.eval.directions, (1,), config.eval.chunk_size,
                                         model, states)
        device = capabilities.device_of(model)  # the embeddings and the logit scales live there
        if "text" in embeddings:  # in the loss, the first caption of each item stands for it
            first = val_split.caption_offsets[:-1].to(device)
            embeddings["text"] = embeddings["text"][first]
            if states:
                states["text"] = states["text"][first]
        items = torch.arange(len(val_split), device=device)
        losses = [step.objective({m: e[i:i + size] for m, e in embeddings.items()},
                                 dict.fromkeys(embeddings, items[i:i + size]),
                                 states={m: s[i:i + size] for m, s in states.items()} if states else None).total.item()
                  for i in range(0, len(val_split) - size + 1, size)]
        return sum(losses) / len(losses), {d: m["R@1"] for d, m in metrics.items() if isinstance(m, dict)}

    return validate


def query_function(model, split: EncodedSplit, config: RunConfig, embeddings: dict | None = None,
                   states: dict | None = None):
    """The online path of the first direction: one query encoded, scored against the gallery, top-10.

    `embeddings` and `states` (modality → the split's embeddings and states, from the evaluation) spare encoding
    the gallery again.
    """
    available = set(split.modalities) & set(model.modalities)
    direction = next(d for d in config.eval.directions if set(direction_modalities(d)) <= available)
    query, gallery = direction_modalities(direction)
    device = capabilities.device_of(model)
    gallery_emb, gallery_states = (embeddings or {}).get(gallery), (states or {}).get(gallery)
    if gallery_emb is None or (gallery_states is None and capabilities.has_states(model)):
        gallery_emb, gallery_states = encode_split_states(model, split, gallery, config.eval.batch_size)
    return query_path(model, to_device(split.rows(query, torch.tensor([0])), device), query, gallery_emb.to(device),
                      gallery_modality=gallery, gallery_states=gallery_states)


def measured_fields(model, config: RunConfig, data: RunData, seed: int, result: TrainResult, evaluation: Evaluation,
                    probes: dict, memory: dict, adapter_bytes: int | None, artifacts: Path) -> dict:
    """Metrics, costs, timings, curve and the profile: the measured fields of a record."""
    timings = {}
    latency_contention = None
    if evaluation.metrics.keys() - {"rsum"}:
        path = query_function(model, data.test, config, evaluation.embeddings, evaluation.states)
        with ContentionMeter() as meter:  # what other processes took of the CPUs while the path was timed
            query, reference = time_interleaved(path, machine_reference.reference_workload, warmup=3, min_count=20,
                                                min_time_s=0.5, cuda=capabilities.device_of(model).type == "cuda")
        timings["query_latency_s"], timings[machine_reference.NAME] = query.to_dict(), reference.to_dict()
        latency_contention = meter.share if distributed.current() is None else None  # other ranks are not foreign
    step_seconds = [s.seconds for s in result.steps]
    if step_seconds:
        timings["step_time_s"] = Measurement("s", step_seconds).to_dict()
    costs = {
        "train_wall_s": result.wall_s,
        "train_steps": len(result.steps),
        "step_time_s": statistics.median(step_seconds) if step_seconds else None,
        "samples_per_s": statistics.median(s.samples_per_s for s in result.steps) if result.steps else None,
        "eval_wall_s": evaluation.seconds,
        "trainable_params": capabilities.count_parameters(model, trainable=True),
        "model_bytes": capabilities.model_bytes(model),
        "nonzero_trainable_params": capabilities.count_nonzero(model),
        "total_params": capabilities.count_parameters(model),
        "adapter_bytes": adapter_bytes,
        "latency_foreign_cpu_share": latency_contention,
        **memory,
    }
    pairs = trained_pairs(model, config, data)

    def train_again(extra_probes):  # a few more steps for the trace (the artifacts are saved already)
        steps = replace(config.train, steps=config.profile.trace_steps + 1, eval_every=0, checkpoint_every=0)
        callbacks = capabilities.training_callbacks(model) + list(extra_probes)  # the adapters' own, as in training
        train(model, data.train, steps, seed=seed, pairs=pairs, progress=False, callbacks=callbacks)

    profiled = run_profile(model, config, train_split=data.train, test_split=data.test, train_result=result,
                           probes=probes, pairs=pairs, embeddings=evaluation.embeddings, metrics=evaluation.metrics,
                           evaluation_memory=evaluation.memory, run_name=f"{artifacts.parent.name}/{artifacts.name}",
                           train_again=train_again)
    timings.update(profiled["timings"])
    costs.update(profiled["costs"])
    adapters = capabilities.adapter_stats(model)
    if adapters:
        profiled["profile"]["adapters"] = adapters
    return {
        "metrics": evaluation.metrics, "costs": costs, "timings": timings, "profile": profiled["profile"],
        "curve": [vars(p) for p in result.curve], "steps": [vars(s) for s in result.steps],
        "per_query": per_query_fields(evaluation.per_query, data.test),
    }


def per_query_fields(per_query: dict, split: EncodedSplit) -> dict:
    """Each direction's per-query ranks for paired statistics, and which queries have a known hard
    negative in the split (the built-in data knows them): the subset the report compares apart."""
    fields = {}
    for direction, ranks in per_query.items():
        fields[direction] = {"first_rank": ranks.first_rank.tolist(),
                             "ap": [round(x, 6) for x in ranks.average_precision.tolist()]}
        hard = split.hard_negative_rows(direction_modalities(direction)[0])
        if hard is not None:
            fields[direction]["hard_negative_rows"] = hard
    return fields


def execute(config: RunConfig, seed: int, artifacts: Path, progress: bool = True, on_model=None,
            identity: str = "", teacher: Path | None = None) -> dict:
    """data → model → train → transforms → evaluate → profile; returns the record fields it measured.

    `on_model(model, test_split)` is called with the final model (the pytest plugin times it).
    """
    load_builtins()
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    data = load_data(config)
    model, foundation = prepare_model(config, data, seed, progress)
    probes = step_probes(config)
    memory = PeakMemory()
    taught = load_teacher(teacher, config) if teacher else None
    with memory.track(), feature_cache(model, config) as caches:
        result = train_model(model, config, data, seed, checkpoint_dir=artifacts / "checkpoint",
                             identity=identity or f"{config.config_id()}:{seed}", progress=progress, probes=probes,
                             teacher=taught)
    ranks = distributed.current()
    if ranks and not ranks.is_main:
        return {}  # rank 0 evaluates, profiles and records
    adapter_bytes = save_artifacts(model, artifacts, config, data.modalities, seed)
    model = apply_transforms(model, config)
    faults.inject(model)  # no-op unless XMBENCH_FAULT is set (validating the gates)
    evaluation = evaluate(model, config, data.test)
    if on_model:
        on_model(model, data.test)
    fields = measured_fields(model, config, data, seed, result, evaluation, probes, memory.result(), adapter_bytes,
                             artifacts)
    if caches:  # how much of the frozen towers' work the cache saved
        fields["profile"]["feature_cache"] = {m: cache.stats() for m, cache in caches.items()}
    if ranks:  # what the record's costs mean depends on how many ranks shared the batch
        fields["costs"].update(ranks=ranks.world, global_batch=config.train.batch_size * ranks.world
                               * config.train.accumulation, ddp_loss=config.train.ddp_loss)
    return {**fields, "foundation": foundation}


def execute_derived(technique, inputs: dict[str, Path], config: RunConfig, seed: int, artifacts: Path,
                    progress: bool = True, on_model=None) -> dict:
    """A derived run: the input variants rebuilt from their artifacts, combined, then evaluated and profiled."""
    from xmbench.models.artifacts import load_artifacts
    from xmbench.registry import DERIVED

    load_builtins()
    data = load_data(config)
    device = resolve_device(config.train.device)
    members = [apply_transforms(*load_artifacts(path, device, with_config=True)) for path in inputs.values()]  # each its own
    val = data.val if data.val is not None else load_split(config.data, "val")  # for techniques fitted on it
    model = DERIVED.bind(technique)(members, val=val, eval_config=config.eval)
    faults.inject(model)
    evaluation = evaluate(model, config, data.test)
    if on_model:
        on_model(model, data.test)
    artifacts.mkdir(parents=True, exist_ok=True)
    fields = measured_fields(model, replace(config, train=replace(config.train, steps=0)), data, seed, TrainResult(),
                             evaluation, {}, {}, None, artifacts)
    return {**fields, "foundation": {}}
