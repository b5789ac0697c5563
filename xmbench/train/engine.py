"""The training loop: sample, schedule, forward and objective, backward, clip, step, log.

Reads top to bottom. Each step: callbacks may steer (pairs, weights, batch size, what trains);
the sampler draws `accumulation` micro-batches, augmented on the fly; every parameter group gets the scheduled rate
times its multiplier; each micro-batch goes through the one TrainingStep (encode, loss,
regularisers) and backward; gradients are clipped, the optimizer steps, the model clamps what
it clamps; the sampler sees each item's loss. Every `eval_every` steps a validation point of the
learning curve; every `checkpoint_every` steps a resumable checkpoint.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from xmbench.config import TrainConfig
from xmbench.data.preprocess import EncodedSplit
from xmbench.errors import NonFiniteLossError
from xmbench.models import capabilities
from xmbench.models.model import to_device
from xmbench.profile.phases import Phases
from xmbench.registry import AUGMENTATIONS, SAMPLERS, SCHEDULES
from xmbench.train import checkpoint, distributed
from xmbench.train.hooks import Callbacks, TrainState
from xmbench.train.optim import ParameterGroups, set_learning_rate
from xmbench.train.step import Batch, TrainingStep


@dataclass
class StepLog:
    step: int
    loss: float
    lr: float
    temperature: float
    seconds: float
    samples_per_s: float
    pair_losses: dict[str, float]  # every named part of the objective (pairs, regularisers)
    notes: dict = field(default_factory=dict)  # what callbacks report at this step (schedules, masks)


@dataclass
class CurvePoint:
    step: int
    train_loss: float  # mean over the steps since the previous point
    val_loss: float
    val_r1: dict[str, float]  # R@1 per direction on the validation split


@dataclass
class TrainResult:
    steps: list[StepLog] = field(default_factory=list)
    curve: list[CurvePoint] = field(default_factory=list)
    wall_s: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, saved: dict) -> TrainResult:
        return cls([StepLog(**s) for s in saved["steps"]], [CurvePoint(**c) for c in saved["curve"]], saved["wall_s"])


def make_batch(split: EncodedSplit, items: torch.Tensor, modalities, generator: torch.Generator,
               device: torch.device | str = "cpu") -> Batch:
    """Inputs of each modality for these items, on `device`; text takes one random caption per item.

    Items that lack a modality (split.present) have no row in it: `batch.present` says which.
    """
    rows = {m: split.sample_captions(items, generator) if m == "text" else items for m in modalities}
    present = {m: split.present[m][items] for m in modalities if m in split.present} if split.present else {}
    if all(p.all() for p in present.values()):
        return Batch({m: to_device(split.rows(m, rows[m]), device) for m in modalities},
                     dict.fromkeys(modalities, items))
    present = {m: present.get(m, torch.ones(len(items), dtype=torch.bool)) for m in modalities}
    return Batch({m: to_device(split.rows(m, rows[m][present[m]]), device) for m in modalities},
                 {m: items[present[m]] for m in modalities}, present=present)


def train(model, train_split: EncodedSplit, cfg: TrainConfig, *, seed: int, pairs: list[tuple[str, str]],
          validate: Callable[[object, object], tuple[float, dict[str, float]]] | None = None,
          checkpoint_dir: Path | None = None, checkpoint_identity: str = "", progress: bool = True,
          on_step: Callable[[StepLog], None] | None = None, callbacks=(), teacher=None) -> TrainResult:
    """Train `model` in place; resumes from `checkpoint_dir` when it holds this run's checkpoint.

    `callbacks` (xmbench.train.hooks.Callback: the suite's registered callbacks and the profile's
    probes) see every phase of every step and may steer training through the TrainState. Under
    torchrun (xmbench.train.distributed) every rank draws the same global batch, trains on its
    slice under DDP, and only rank 0 validates and writes checkpoints.
    """
    ranks = distributed.current()
    ddp = distributed.wrap(model, ranks) if ranks else None
    world = ranks.world if ranks else 1
    main = ranks is None or ranks.is_main
    step_fn = TrainingStep(model, cfg, pairs, teacher, ddp=ddp, ranks=ranks)
    groups = ParameterGroups(model, cfg.lr_scale, cfg.layer_decay, extra=dict(step_fn.loss_parameters))
    optimizer = groups.build(cfg)
    clipped = groups.trainable()
    sampler = SAMPLERS.bind(cfg.sampler)(train_split, cfg.batch_size * world, seed)  # the global batch
    schedule = SCHEDULES.bind(cfg.schedule)
    scaler = capabilities.grad_scaler(model, capabilities.device_of(model))  # fp16: loss scaling against underflow
    caption_generator = torch.Generator().manual_seed(seed + 1)
    augmentations = [AUGMENTATIONS.bind(choice)(train_split) for choice in cfg.augment]
    augment_generator = torch.Generator().manual_seed(seed + 2)
    device = capabilities.device_of(model)
    hooks = Callbacks(callbacks)
    phases = Phases(hooks)

    def refresh_parameters() -> None:  # a callback changed what trains
        groups.sync(optimizer)
        clipped[:] = groups.trainable()

    probe_generator = torch.Generator().manual_seed(seed + 3)

    def draw_batch(n: int):  # for callbacks that measure the model on data (curricula)
        rows = torch.randperm(len(train_split), generator=probe_generator)[:n]
        return make_batch(train_split, rows, step_fn.modalities, probe_generator, device)

    state = TrainState(model, optimizer, step_fn, sampler, cfg.steps, refresh_parameters=refresh_parameters, seed=seed,
                       draw_batch=draw_batch, split=train_split, scaler=scaler)
    generators = {"captions": caption_generator, "augment": augment_generator, "probe": probe_generator}
    result, start = TrainResult(), 0
    if checkpoint_dir is not None:
        resumed = checkpoint.load(checkpoint_dir, checkpoint_identity, groups.named(), optimizer, sampler, generators,
                                  hooks.callbacks)
        if resumed:
            start, result = resumed[0], TrainResult.from_dict(resumed[1])
            clipped[:] = groups.trainable()  # layers unfrozen before the checkpoint train again
    capabilities.set_training(model, True)
    began = time.perf_counter() - result.wall_s
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, disable=not progress, leave=False,
               desc="train", unit="step")
    state.step = start  # a resumed run's callbacks start where it stopped
    hooks.on_train_start(state)
    try:
        for step in bar:
            state.step = step
            hooks.on_step_start(state)
            if ranks:  # what rank 0's callbacks decided (its validation points drive adaptive weights) holds everywhere
                distributed.agree(step_fn)
            t0 = time.perf_counter()
            with phases("data"):  # item rows of this step and their inputs (already preprocessed tensors)
                rows = [sampler.next().repeat_interleave(cfg.views_per_item) for _ in range(cfg.accumulation)]
                micro = [make_batch(train_split, r, step_fn.modalities, caption_generator, device) for r in rows]
                if ranks:  # every rank drew the same global batch: each trains on its own slice
                    micro = [b.rank_slice(ranks.rank, world) for b in micro]
                for augment in augmentations:
                    micro = [augment(batch, augment_generator) for batch in micro]
                if micro[0].present:  # items lacking modalities: the rows each pair trains on this step
                    state.notes["pair_rows"] = pair_rows(micro, step_fn.pairs)
                lr = cfg.lr * schedule(step, cfg.steps, cfg.warmup_steps)
                set_learning_rate(optimizer, lr)
            scale = scaler.scale if scaler else (lambda loss: loss)
            if cfg.accumulation_mode == "cached":  # GradCache: the whole batch's objective, micro-batch memory
                with phases("forward"):
                    out, backward = step_fn.cached(micro, step, state.progress)
                    losses = [out.total.item()]
                _check_finite(losses[0], step, out)
                with phases("backward"):
                    optimizer.zero_grad(set_to_none=True)
                    if out.total.requires_grad:
                        backward(scale)
                parts = {name: value.item() for name, value in out.parts.items()}
                if out.per_item is not None:
                    sampler.observe(torch.cat(rows), out.per_item)
            else:  # plain accumulation: each micro-batch's own objective, gradients summed
                losses, parts = [], {}
                for index, batch in enumerate(micro):
                    # DDP averages gradients at the last micro-batch's backward only
                    sync = ddp.no_sync() if ddp is not None and index < len(micro) - 1 else nullcontext()
                    with sync:
                        with phases("forward"):  # each modality once, then the objective over every pair
                            out = step_fn(batch, step, state.progress)
                            value = out.total.item()  # sync point on GPU: the one host read of a micro-batch
                            losses.append(distributed.mean(value) if step_fn.local_loss and ranks else value)
                        _check_finite(losses[-1], step, out)
                        with phases("backward"):
                            if index == 0:
                                optimizer.zero_grad(set_to_none=True)
                            if out.total.requires_grad:  # a model with nothing to train is still measured
                                scale(out.total if cfg.accumulation == 1 else out.total / cfg.accumulation).backward()
                    for name, value in out.parts.items():
                        parts[name] = parts.get(name, 0.0) + value.item() / cfg.accumulation
                    if out.per_item is not None:
                        _observe(sampler, rows[index], out.per_item)
            if scaler:
                scaler.unscale_(optimizer)  # probes and clipping see the true gradients; inf/NaN skips the step
            hooks.after_backward(state)
            with phases("optimizer"):
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(clipped, cfg.grad_clip)
                if scaler:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                capabilities.after_optimizer_step(model)
            seconds = time.perf_counter() - t0
            loss_value = sum(losses) / len(losses)
            items = sum(len(r) for r in rows)
            log = StepLog(step, loss_value, lr, _temperature(model, step_fn.pairs, step), seconds, items / seconds, parts,
                          dict(state.notes))
            result.steps.append(log)
            bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr:.2e}")
            hooks.on_step_end(state, log)
            log.notes = dict(state.notes)  # what the callbacks noted at this step's end too
            if on_step:
                on_step(log)
            done = step + 1
            if main and validate and cfg.eval_every and (done % cfg.eval_every == 0 or done == cfg.steps):
                result.curve.append(_curve_point(done, result, validate(model, step_fn), cfg.eval_every))
                hooks.on_validation(state, result.curve[-1])
            if main and checkpoint_dir is not None and cfg.checkpoint_every and done % cfg.checkpoint_every == 0:
                result.wall_s = time.perf_counter() - began
                checkpoint.save(checkpoint_dir, checkpoint_identity, done, result.to_dict(), groups.named(), optimizer,
                                sampler, generators, hooks.callbacks)
    finally:
        hooks.on_train_end(state)
        bar.close()
    result.wall_s = time.perf_counter() - began
    return result


def pair_rows(micro: list[Batch], pairs) -> dict[str, int]:
    """How many of the step's items have both modalities of each pair (what that pair's loss sees)."""
    return {f"{a}-{b}": sum(int((batch.present[a] & batch.present[b]).sum()) for batch in micro) for a, b in pairs}


def _observe(sampler, rows: torch.Tensor, per_item: torch.Tensor) -> None:
    """Each item's loss to the sampler; an item in no trained pair this step (it lacks the other
    modalities, per_item NaN) has no loss to report."""
    known = torch.isfinite(per_item)
    if known.all():
        sampler.observe(rows, per_item)
    elif known.any():
        sampler.observe(rows[known.cpu()], per_item[known])


def _check_finite(value: float, step: int, out) -> None:
    if value != value or abs(value) == float("inf"):
        bad = [m for m, e in out.embeddings.items() if not torch.isfinite(e).all()]
        source = f"; model.encode returned non-finite embeddings for {', '.join(bad)}" if bad else ""
        raise NonFiniteLossError(f"loss became {value} at step {step} "
                                 f"(pairs: {', '.join(f'{k}={v.item():.4g}' for k, v in out.parts.items())}){source}")


def _temperature(model, pairs, step: int) -> float:
    """The first pair's temperature (1 / logit scale); a scale that reached 0 or infinity is divergence."""
    scales = capabilities.logit_scales(model, pairs)
    if not scales:
        return float("nan")
    scale = next(iter(scales.values())).item()
    if not 0 < scale < float("inf"):
        raise NonFiniteLossError(f"the logit scale became {scale} at step {step} (temperature "
                                 f"{'infinite' if scale == 0 else 'zero or undefined'}): training diverged; "
                                 f"lower train.lr or clip gradients (train.grad_clip)")
    return 1.0 / scale


def _curve_point(step: int, result: TrainResult, validation: tuple[float, dict[str, float]], window: int) -> CurvePoint:
    recent = [s.loss for s in result.steps[-window:]]
    val_loss, val_r1 = validation
    return CurvePoint(step, sum(recent) / len(recent), val_loss, val_r1)
