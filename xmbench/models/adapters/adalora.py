"""AdaLoRA (Zhang et al. 2023) through peft: SVD-form low-rank updates whose ranks are re-allocated while training.

Each targeted layer gets ΔW = alpha / r_live · P·Λ·Q with Λ (init_r singular values, zero at start),
P and Q trained. After every optimizer step a callback calls peft's `update_and_allocate(step)`
(with the number of completed steps): it smooths each triplet's importance (|w · ∂L/∂w|, EMAs
beta1/beta2) and zeroes the least important singular values so that the total rank follows a cubic
schedule from init_r to target_r per layer between step tinit and total_step − tfinal (every
delta_t steps), then keeps that pattern. `total_step` unset takes the run's `train.steps`.

Two things peft leaves to its own training loop happen here: the orthogonal regulariser
orth_reg_weight · mean ‖PᵀP − I‖_F, ‖QQᵀ − I‖_F (peft adds it to a model output's `loss`, which
the towers do not have) has its gradient added after each backward; and at the end of training
the rank pattern is moved out of peft's config into the stats, so the adapter is saved at full
size with its pruned singular values at zero (load_artifacts rebuilds that size; embeddings are identical).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Annotated

from xmbench.errors import ConfigError
from xmbench.lazy import torch
from xmbench.models.adapters._targets import Layers, attach, check_layers, check_targets, peft_model, resolve_targets
from xmbench.registry import ADAPTERS
from xmbench.schema import NON_NEGATIVE, POSITIVE, PROBABILITY, Range
from xmbench.train.hooks import Callback

OPEN_UNIT = Range(0, 1, low_open=True, high_open=True)


@dataclass(frozen=True)
class AdaLoraOptions:
    """Attributes:
    init_r: the rank each targeted layer starts with.
    target_r: the average rank per layer the budget ends at (below init_r).
    alpha: the update is scaled by alpha / (live rank).
    dropout: dropout on the adapter's input.
    tinit: steps of warm-up before ranks are pruned.
    tfinal: last steps that train the final rank pattern without re-allocation.
    delta_t: steps between two re-allocations.
    beta1: EMA factor of the importance (sensitivity) smoothing.
    beta2: EMA factor of the uncertainty of the importance.
    orth_reg_weight: weight of the orthogonality regulariser on P and Q.
    total_step: steps of the allocation schedule; unset: the run's train.steps.
    targets: roles (query, key, value, output = attention output, mlp_in, mlp_out) or module names to adapt.
    layers: transformer layers that get adapters: "all", "top:N", "bottom:N" or a list of indices (0 = first).
    """

    init_r: Annotated[int, POSITIVE] = 12
    target_r: Annotated[int, POSITIVE] = 8
    alpha: Annotated[float, POSITIVE] = 16.0
    dropout: Annotated[float, PROBABILITY] = 0.0
    tinit: Annotated[int, NON_NEGATIVE] = 0
    tfinal: Annotated[int, NON_NEGATIVE] = 0
    delta_t: Annotated[int, POSITIVE] = 1
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
    if options.tinit >= total_step - options.tfinal:
        raise ConfigError(f"adalora: tinit ({options.tinit}) must be below total_step − tfinal "
                          f"({total_step} − {options.tfinal}): no step is left to re-allocate ranks")


@ADAPTERS.register("adalora", AdaLoraOptions)
def adalora(backbone, options: AdaLoraOptions):
    """AdaLoRA (peft): SVD-form LoRA whose ranks are re-allocated by importance during training (init_r → target_r)."""
    from peft import AdaLoraConfig

    # peft requires a total_step now; without one, a placeholder until the run's steps are known
    total = options.total_step or options.tinit + options.tfinal + 1
    config = AdaLoraConfig(init_r=options.init_r, target_r=options.target_r, lora_alpha=options.alpha,
                           lora_dropout=options.dropout, tinit=options.tinit, tfinal=options.tfinal,
                           deltaT=options.delta_t, beta1=options.beta1, beta2=options.beta2,
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
    ranks = allocated_ranks(model, allocation)
    return {"init_r": allocation.options.init_r, "target_r": allocation.options.target_r,
            "total_step": allocation.config.total_step, "allocations": allocation.allocations,
            "total_rank": sum(ranks.values()), "ranks": ranks,
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
            self.config.total_step = state.total_steps  # the rank allocator reads this same config

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
