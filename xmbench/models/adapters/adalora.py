"""AdaLoRA (Zhang et al. 2023) through peft: SVD-form low-rank updates whose ranks are re-allocated while training.

Each targeted layer gets ΔW = alpha / r_live · P·Λ·Q with Λ (init_r singular values, zero at start),
P and Q trained. After every optimizer step a callback calls peft's `update_and_allocate(step)`
(with the number of completed steps): it smooths each triplet's importance (|w · ∂L/∂w|, EMAs
beta1/beta2) at every step, and every delta_t steps between step tinit and total_step − tfinal zeroes
the least important singular values so that the total rank follows a cubic schedule from init_r to
target_r per layer; then it keeps that pattern for the final phase.

The schedule has the paper's shape (its GLUE and SQuAD settings: a warm-up of about a tenth of the run,
a final phase of about half of it, re-allocation every 100 steps of thousands) and is written as
fractions of the run, so it scales with `train.steps`: tinit = 0.1, tfinal = 0.4 and delta_t = 0.05 of
total_step (at 100 steps: prune from step 10 to step 60, every 5 steps). `total_step` unset takes
the run's `train.steps`.

Two things peft leaves to its own training loop happen here: the orthogonal regulariser
orth_reg_weight · mean ‖PᵀP − I‖_F, ‖QQᵀ − I‖_F (peft adds it to a model output's `loss`, which
the towers do not have) has its gradient added after each backward; and at the end of training
the rank pattern is moved out of peft's config into the stats, so the adapter is saved at full
size with its pruned singular values at zero (load_artifacts rebuilds that size; embeddings are identical).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, ClassVar

from xmbench.errors import ConfigError
from xmbench.lazy import torch
from xmbench.models.adapters._targets import Layers, attach, check_layers, check_targets, peft_model, resolve_targets
from xmbench.registry import ADAPTERS
from xmbench.schema import NON_NEGATIVE, POSITIVE, PROBABILITY, Range
from xmbench.train.hooks import Callback

OPEN_UNIT = Range(0, 1, low_open=True, high_open=True)
FRACTION = Range(0, 1, high_open=True)  # a share of the run: [0, 1)


@dataclass(frozen=True)
class AdaLoraOptions:
    """Attributes:
    init_r: the rank each targeted layer starts with.
    target_r: the average rank per layer the budget ends at (below init_r).
    alpha: the update is scaled by alpha / (live rank).
    dropout: dropout on the adapter's input.
    tinit: the warm-up before ranks are pruned, as a fraction of total_step.
    tfinal: the final phase that trains the final rank pattern without re-allocation, a fraction of total_step.
    delta_t: the interval between two re-allocations, a fraction of total_step (at least one step).
    beta1: EMA factor of the importance (sensitivity) smoothing.
    beta2: EMA factor of the uncertainty of the importance.
    orth_reg_weight: weight of the orthogonality regulariser on P and Q.
    total_step: steps of the allocation schedule; unset: the run's train.steps.
    targets: roles (query, key, value, output = attention output, mlp_in, mlp_out) or module names to adapt.
    layers: transformer layers that get adapters: "all", "top:N", "bottom:N" or a list of indices (0 = first).
    """

    # 2: the schedule became fractions of the run (it was steps, 0/0/1: re-allocation from step 0 on every step)
    REVISION: ClassVar[int] = 2

    init_r: Annotated[int, POSITIVE] = 12
    target_r: Annotated[int, POSITIVE] = 8
    alpha: Annotated[float, POSITIVE] = 16.0
    dropout: Annotated[float, PROBABILITY] = 0.0
    tinit: Annotated[float, FRACTION] = 0.1
    tfinal: Annotated[float, FRACTION] = 0.4
    delta_t: Annotated[float, OPEN_UNIT] = 0.05
    beta1: Annotated[float, OPEN_UNIT] = 0.85
    beta2: Annotated[float, OPEN_UNIT] = 0.85
    orth_reg_weight: Annotated[float, NON_NEGATIVE] = 0.5
    total_step: Annotated[int, POSITIVE] | None = None
    targets: list[str] = field(default_factory=lambda: ["query", "value"])
    layers: Layers = "all"

    def __post_init__(self):
        check_targets(self.targets)
        check_layers(self.layers)
        if self.target_r >= self.init_r:  # peft's allocator cannot prune nothing (kthvalue with k = 0)
            raise ConfigError(f"target_r ({self.target_r}) must be below init_r ({self.init_r})")
        if self.total_step is not None:
            check_schedule(self, self.total_step)


def check_schedule(options, total_step: int) -> None:
    """The schedule in steps must leave a step to re-allocate in: tinit below total_step − tfinal."""
    if options.tinit + options.tfinal >= 1:
        raise ConfigError(f"adalora: tinit + tfinal ({options.tinit} + {options.tfinal}) must be below 1: they are "
                          f"fractions of the run, and no step would be left to re-allocate ranks")
    tinit, tfinal, _ = schedule_steps(options, total_step)
    if tinit >= total_step - tfinal:
        raise ConfigError(f"adalora: at total_step {total_step}, tinit ({options.tinit} → {tinit} steps) must be below "
                          f"total_step − tfinal ({total_step} − {tfinal}): no step is left to re-allocate ranks")


def schedule_steps(options, total_step: int) -> tuple[int, int, int]:
    """(tinit, tfinal, delta_t) in steps for a run of total_step steps."""
    return (round(options.tinit * total_step), round(options.tfinal * total_step),
            max(1, round(options.delta_t * total_step)))


@ADAPTERS.register("adalora", AdaLoraOptions)
def adalora(backbone, options: AdaLoraOptions):
    """AdaLoRA (peft): SVD-form LoRA whose ranks are re-allocated by importance during training (init_r → target_r)."""
    from peft import AdaLoraConfig

    # peft requires a total_step now; without one, a placeholder until the run's steps are known (on_train_start)
    total = options.total_step or 100
    tinit, tfinal, delta_t = schedule_steps(options, total)
    config = AdaLoraConfig(init_r=options.init_r, target_r=options.target_r, lora_alpha=options.alpha,
                           lora_dropout=options.dropout, tinit=tinit, tfinal=tfinal,
                           deltaT=delta_t, beta1=options.beta1, beta2=options.beta2,
                           orth_reg_weight=options.orth_reg_weight, total_step=total,
                           target_modules=resolve_targets(backbone, options.targets, options.layers))
    model = peft_model(backbone, config)
    allocation = RankAllocation(model, options)
    return attach(model, [allocation], partial(adalora_stats, model, allocation))


def _svd_layers(model) -> dict[str, object]:
    """Adapted module name (as in the backbone) → its peft SVDLinear."""
    from peft.tuners.adalora import SVDLinear

    prefix = "base_model.model."
    return {name.removeprefix(prefix): module for name, module in model.named_modules() if isinstance(module, SVDLinear)}


def nonzero_singular_values(model) -> dict[str, int]:
    """Non-zero entries of Λ of each adapted layer (zero at initialisation, before any training)."""
    name = model.base_model.trainable_adapter_name
    return {n: int(torch.count_nonzero(m.lora_E[name].detach())) for n, m in _svd_layers(model).items()}


def allocated_ranks(model, allocation: RankAllocation) -> dict[str, int]:
    """The rank each adapted layer is allotted: init_r until the first re-allocation, then peft's rank pattern."""
    pattern = allocation.config.rank_pattern or allocation.rank_pattern
    layers = _svd_layers(model)
    if not pattern:
        return {n: allocation.options.init_r for n in layers}
    adapter = model.base_model.trainable_adapter_name
    kept = {k.replace(f".{adapter}", "").removesuffix(".lora_E"): sum(bool(x) for x in v) for k, v in pattern.items()}
    return {n: kept.get(n, allocation.options.init_r) for n in layers}


def adalora_stats(model, allocation: RankAllocation) -> dict:
    """The budget and where it went: each layer's rank, and how far the pattern is from init_r and from a
    uniform split of the same total (every layer at the mean rank): 0 layers moved means nothing was learnt."""
    ranks = allocated_ranks(model, allocation)
    config = allocation.config
    total = sum(ranks.values())
    uniform = total / len(ranks) if ranks else 0.0
    return {"init_r": allocation.options.init_r, "target_r": allocation.options.target_r,
            "total_step": config.total_step, "schedule_steps": {"tinit": config.tinit, "tfinal": config.tfinal,
                                                                "delta_t": config.deltaT},
            "allocations": allocation.allocations, "total_rank": total, "ranks": ranks,
            "layers_off_init_r": sum(r != allocation.options.init_r for r in ranks.values()),
            "layers_off_uniform": sum(abs(r - uniform) >= 0.5 for r in ranks.values()),
            "rank_min": min(ranks.values(), default=0), "rank_max": max(ranks.values(), default=0),
            "nonzero_singular_values": sum(nonzero_singular_values(model).values())}


class RankAllocation(Callback):
    """AdaLoRA's training duties: schedule length, orthogonal regulariser, rank re-allocation after each step."""

    def __init__(self, model, options: AdaLoraOptions):
        self.model = model  # the PeftModel
        self.options = options
        self.allocations = 0
        self.rank_pattern = None  # kept here at the end of training (see on_train_end)

    @property
    def config(self):
        return self.model.peft_config[self.model.base_model.trainable_adapter_name]

    def on_train_start(self, state) -> None:
        if self.rank_pattern is not None:  # trained before: the final phase masks by the pattern
            self.config.rank_pattern, self.rank_pattern = self.rank_pattern, None
        if self.options.total_step is None and self.allocations == 0:
            check_schedule(self.options, state.total_steps)
            config = self.config  # the rank allocator reads this same config
            config.total_step = state.total_steps
            config.tinit, config.tfinal, config.deltaT = schedule_steps(self.options, state.total_steps)

    def after_backward(self, state) -> None:
        weight = self.options.orth_reg_weight
        factors = [(n, p) for n, p in self.model.named_parameters()
                   if p.requires_grad and ("lora_A" in n or "lora_B" in n)]
        if weight == 0 or not factors or any(p.grad is None for _, p in factors):
            return  # no regulariser, or this tower did not train at this step
        with torch.enable_grad():
            penalty = 0
            for name, p in factors:
                gram = p @ p.T if "lora_A" in name else p.T @ p
                penalty = penalty + torch.linalg.matrix_norm(gram - torch.eye(len(gram), device=p.device, dtype=p.dtype))
            (weight * penalty / len(factors)).backward()

    def on_step_end(self, state, log) -> None:
        trained = [p for n, p in self.model.named_parameters() if "lora_" in n and p.requires_grad]
        if not trained or any(p.grad is None for p in trained):
            return  # this tower did not train at this step
        self.model.base_model.update_and_allocate(state.step + 1)  # steps completed: the last one finalises
        self.allocations += 1
        ranks = sum(allocated_ranks(self.model, self).values())
        state.notes[f"adalora/{type(self.model.get_base_model()).__name__}/rank"] = ranks

    def on_train_end(self, state) -> None:
        # the pruned singular values are zero in the weights: save them at full size (no rank_pattern resize)
        if self.config.rank_pattern is not None:
            self.rank_pattern, self.config.rank_pattern = self.config.rank_pattern, None
