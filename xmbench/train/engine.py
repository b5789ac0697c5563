"""The training loop: symmetric contrastive loss over every modality pair, AdamW, warmup+cosine.

Reads top to bottom: sample a batch, set the learning rate, encode each modality, loss,
backward, clip, step, clamp the temperature, log; every `eval_every` steps a validation point
of the learning curve; every `checkpoint_every` steps a resumable checkpoint.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from xmbench.config import TrainConfig
from xmbench.data.preprocess import EncodedSplit
from xmbench.errors import NonFiniteLossError
from xmbench.models.model import model_device, to_device
from xmbench.profile.phases import Phases
from xmbench.registry import LOSSES, SCHEDULES

CHECKPOINT = "checkpoint.pt"


@dataclass
class StepLog:
    step: int
    loss: float
    lr: float
    temperature: float
    seconds: float
    samples_per_s: float
    pair_losses: dict[str, float]


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


class EpochSampler:
    """Item rows in shuffled epochs, so a batch never holds the same item twice."""

    def __init__(self, n_items: int, batch_size: int, seed: int):
        self.n_items, self.batch_size = n_items, min(batch_size, n_items)
        self.generator = torch.Generator().manual_seed(seed)
        self.order, self.position = torch.randperm(n_items, generator=self.generator), 0

    def next(self) -> torch.Tensor:
        if self.position + self.batch_size > self.n_items:
            self.order, self.position = torch.randperm(self.n_items, generator=self.generator), 0
        rows = self.order[self.position:self.position + self.batch_size]
        self.position += self.batch_size
        return rows

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "order": self.order, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.order, self.position = state["order"], state["position"]


def logit_scale(model) -> torch.Tensor:
    """The model's learnable scale, or CLIP's initial 1/0.07 for models that have none."""
    scale = getattr(model, "logit_scale", None)
    return scale if scale is not None else torch.tensor(1.0 / 0.07)


def make_batch(split: EncodedSplit, items: torch.Tensor, modalities, generator: torch.Generator,
               device: torch.device | str = "cpu") -> dict:
    """Inputs of each modality for these items, on `device`; text takes one random caption per item."""
    rows = {m: split.sample_captions(items, generator) if m == "text" else items for m in modalities}
    return {m: to_device(split.rows(m, rows[m]), device) for m in modalities}


def train(model, train_split: EncodedSplit, cfg: TrainConfig, *, seed: int, pairs: list[tuple[str, str]],
          validate: Callable[[object], tuple[float, dict[str, float]]] | None = None,
          checkpoint_dir: Path | None = None, progress: bool = True,
          on_step: Callable[[StepLog], None] | None = None, probes=()) -> TrainResult:
    """Train `model` in place; resumes from `checkpoint_dir` when it holds a checkpoint.

    `probes` (xmbench.profile.phases.StepProbe) are told each phase of each step and see the
    gradients before clipping; none are attached unless the profile section asks for them.
    """
    phases = Phases(probes)
    modalities = sorted({m for pair in pairs for m in pair})
    device = model_device(model)
    loss_fn, schedule = LOSSES.get(cfg.loss), SCHEDULES.get(cfg.schedule)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sampler = EpochSampler(len(train_split), cfg.batch_size, seed)
    caption_generator = torch.Generator().manual_seed(seed + 1)
    result, start = TrainResult(), 0
    if checkpoint_dir is not None and (checkpoint_dir / CHECKPOINT).exists():
        start, result = _load_checkpoint(checkpoint_dir / CHECKPOINT, model, optimizer, sampler, caption_generator)
    model.train()
    began = time.perf_counter() - result.wall_s
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, disable=not progress, leave=False,
               desc="train", unit="step")
    with phases.attached(model, optimizer):
        for step in bar:
            t0 = time.perf_counter()
            with phases("data"):  # item rows of this step and their inputs (already preprocessed tensors)
                items = sampler.next()
                batch = make_batch(train_split, items, modalities, caption_generator, device)
                lr = cfg.lr * schedule(step, cfg.steps, cfg.warmup_steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr
            with phases("forward"):  # each modality once, then the loss over every pair
                embeddings = {m: model.encode(m, batch[m]) for m in modalities}
                loss, parts = loss_fn(embeddings, logit_scale(model), pairs)
                loss_value = loss.item()  # sync point on GPU: the one host read of the step
            if loss_value != loss_value or abs(loss_value) == float("inf"):
                raise NonFiniteLossError(f"loss became {loss_value} at step {step} "
                                         f"(pairs: {', '.join(f'{k}={v.item():.4g}' for k, v in parts.items())})")
            with phases("backward"):
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            phases.after_backward(model, step)
            with phases("optimizer"):
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                optimizer.step()
                if hasattr(model, "clamp_temperature"):
                    model.clamp_temperature()
            seconds = time.perf_counter() - t0
            log = StepLog(step, loss_value, lr, float(1.0 / logit_scale(model).item()), seconds, len(items) / seconds,
                          {k: v.item() for k, v in parts.items()})
            result.steps.append(log)
            bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr:.2e}")
            if on_step:
                on_step(log)
            done = step + 1
            if validate and cfg.eval_every and (done % cfg.eval_every == 0 or done == cfg.steps):
                result.curve.append(_curve_point(done, result, validate(model), cfg.eval_every))
            if checkpoint_dir is not None and cfg.checkpoint_every and done % cfg.checkpoint_every == 0:
                result.wall_s = time.perf_counter() - began
                _save_checkpoint(checkpoint_dir / CHECKPOINT, done, result, model, optimizer, sampler, caption_generator)
    bar.close()
    result.wall_s = time.perf_counter() - began
    return result


def _curve_point(step: int, result: TrainResult, validation: tuple[float, dict[str, float]], window: int) -> CurvePoint:
    recent = [s.loss for s in result.steps[-window:]]
    val_loss, val_r1 = validation
    return CurvePoint(step, sum(recent) / len(recent), val_loss, val_r1)


def _trainable_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def _save_checkpoint(path: Path, step: int, result: TrainResult, model, optimizer, sampler, caption_generator) -> None:
    """Atomic: a crash mid-write leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"step": step, "result": result.to_dict(), "model": _trainable_state(model),
             "optimizer": optimizer.state_dict(), "sampler": sampler.state_dict(),
             "captions": caption_generator.get_state(), "torch_rng": torch.get_rng_state()}
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _load_checkpoint(path: Path, model, optimizer, sampler, caption_generator) -> tuple[int, TrainResult]:
    state = torch.load(path, weights_only=False)
    model.load_state_dict(state["model"], strict=False)
    optimizer.load_state_dict(state["optimizer"])
    sampler.load_state_dict(state["sampler"])
    caption_generator.set_state(state["captions"])
    torch.set_rng_state(state["torch_rng"])
    saved = state["result"]
    result = TrainResult([StepLog(**s) for s in saved["steps"]], [CurvePoint(**c) for c in saved["curve"]], saved["wall_s"])
    return state["step"], result
