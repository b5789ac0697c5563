"""SoRA, sparse low-rank adaptation (Ding et al. 2023): LoRA with a gate on each rank, made sparse by a proximal L1 step.

Each targeted linear layer W (out × in) becomes

    y = W·x + (alpha / rank) · B · diag(g) · A · dropout(x)

with A (rank × in, Kaiming-uniform as peft's LoRA), B (out × rank, zeros) and the gate g (rank,
ones) trained by the run's optimizer (AdamW, its weight decay included), so training starts from
the unadapted model. After every optimizer step each gate takes the proximal step of the L1
penalty sparsity_lambda · ‖g‖₁:

    g ← sign(g) · max(|g| − lr · sparsity_lambda, 0)

elementwise, with lr the learning rate the optimizer just used for g (schedule × lr_scale of its
group). A gate that falls below the threshold becomes exactly zero, and its rank contributes
nothing (B's column times 0 times A's row); a later gradient may revive it. The effective rank of a
layer is the number of its non-zero gates. At the end of training the rows of A and columns of B
of dead ranks are zeroed as well (the function is unchanged), so the record's
`nonzero_trainable_params` counts what a pruned adapter stores: r_eff · (in + out + 1) per layer.

The modules are the adapter's own (`_layers.GatedLoraLinear`; peft has no gate between A and B);
they are saved in trained.safetensors. `xmbench_stats()` reports the effective rank per adapted
layer and the non-zero adapter parameters.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Annotated

from xmbench.lazy import torch
from xmbench.models.adapters._targets import Layers, attach, check_layers, check_targets, freeze, resolve_modules
from xmbench.registry import ADAPTERS
from xmbench.schema import NON_NEGATIVE, POSITIVE, PROBABILITY
from xmbench.train.hooks import Callback


@dataclass(frozen=True)
class SoraOptions:
    """Attributes:
    rank: r, the maximal rank of each update (the number of gates).
    alpha: the update is scaled by alpha / rank.
    dropout: dropout on the adapter's input.
    sparsity_lambda: L1 weight of the gates; each step shrinks them by lr · sparsity_lambda.
    targets: roles (query, key, value, output = attention output, mlp_in, mlp_out) or module names to adapt.
    layers: transformer layers that get adapters: "all", "top:N", "bottom:N" or a list of indices (0 = first).
    """

    rank: Annotated[int, POSITIVE] = 8
    alpha: Annotated[float, POSITIVE] = 16.0
    dropout: Annotated[float, PROBABILITY] = 0.0
    sparsity_lambda: Annotated[float, NON_NEGATIVE] = 0.1
    targets: list[str] = field(default_factory=lambda: ["query", "value"])
    layers: Layers = "all"

    def __post_init__(self):
        check_targets(self.targets)
        check_layers(self.layers)


@ADAPTERS.register("sora", SoraOptions)
def sora(backbone, options: SoraOptions):
    """SoRA: LoRA with a gate per rank, sparsified by a proximal L1 step after every optimizer step."""
    from xmbench.models.adapters._layers import GatedLoraLinear, replace_module

    freeze(backbone)
    for name in resolve_modules(backbone, options.targets, options.layers):
        module = backbone.get_submodule(name)
        if not isinstance(module, torch.nn.Linear):
            raise TypeError(f"sora: '{name}' is a {type(module).__name__}, not a linear layer")
        replace_module(backbone, name, GatedLoraLinear(module, options.rank, options.alpha, options.dropout))
    return attach(backbone, [GateProximalStep(backbone, options.sparsity_lambda)], partial(sora_stats, backbone))


def gated_layers(backbone) -> dict[str, object]:
    from xmbench.models.adapters._layers import GatedLoraLinear

    return {n: m for n, m in backbone.named_modules() if isinstance(m, GatedLoraLinear)}


def sora_stats(backbone) -> dict:
    """Effective rank per adapted layer (non-zero gates), and the adapters' parameters: all, non-zero, of live ranks."""
    layers = gated_layers(backbone)
    ranks = {n: m.live_ranks() for n, m in layers.items()}
    tensors = [t for m in layers.values() for t in (m.sora_A, m.sora_B, m.gate)]
    return {
        "rank": next(iter(layers.values())).rank if layers else 0,
        "effective_rank": ranks,
        "total_effective_rank": sum(ranks.values()),
        "params": sum(t.numel() for t in tensors),
        "nonzero_params": sum(int(torch.count_nonzero(t.detach())) for t in tensors),
        "effective_params": sum(r * (m.base.in_features + m.base.out_features + 1)
                                for r, m in zip(ranks.values(), layers.values())),
    }


class GateProximalStep(Callback):
    """After each optimizer step: g ← sign(g) · max(|g| − lr · λ, 0) on every gate; dead ranks pruned at the end."""

    def __init__(self, backbone, sparsity_lambda: float):
        self.backbone = backbone
        self.sparsity_lambda = sparsity_lambda

    def on_step_end(self, state, log) -> None:
        self.shrink(state.optimizer)
        ranks = sum(m.live_ranks() for m in gated_layers(self.backbone).values())
        state.notes[f"sora/{type(self.backbone).__name__}/rank"] = ranks

    def shrink(self, optimizer) -> None:
        """The proximal step, each gate with the learning rate of its optimizer group."""
        gates = {id(m.gate) for m in gated_layers(self.backbone).values()}
        with torch.no_grad():
            for group in optimizer.param_groups:
                threshold = group["lr"] * self.sparsity_lambda
                for p in group["params"]:
                    if id(p) in gates and threshold > 0:
                        p.copy_(p.sign() * (p.abs() - threshold).clamp_min(0))

    def on_train_end(self, state) -> None:
        for module in gated_layers(self.backbone).values():
            module.prune()
