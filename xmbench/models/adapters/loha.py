"""LoHa (Hyeon-Woo et al. 2022, FedPara) through peft: a low-rank Hadamard-product update beside each targeted layer.

ΔW = (alpha / rank) · (B₁·A₁) ⊙ (B₂·A₂), two rank-`rank` factorisations multiplied elementwise, so
the update can reach rank rank² with 2× LoRA's parameters. peft initialises one factor to zero:
training starts from the unadapted model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from xmbench.models.adapters._targets import Layers, check_layers, check_targets, peft_model, resolve_targets
from xmbench.registry import ADAPTERS
from xmbench.schema import POSITIVE, PROBABILITY


@dataclass(frozen=True)
class LoHaOptions:
    """Attributes:
    rank: r of each of the two factorisations.
    alpha: the update is scaled by alpha / rank.
    rank_dropout: dropout of whole ranks during training.
    module_dropout: probability of skipping an adapted layer's update during training.
    targets: roles (query, key, value, output = attention output, mlp_in, mlp_out) or module names to adapt.
    layers: transformer layers that get adapters: "all", "top:N", "bottom:N" or a list of indices (0 = first).
    """

    rank: Annotated[int, POSITIVE] = 8
    alpha: Annotated[float, POSITIVE] = 8.0
    rank_dropout: Annotated[float, PROBABILITY] = 0.0
    module_dropout: Annotated[float, PROBABILITY] = 0.0
    targets: list[str] = field(default_factory=lambda: ["query", "value"])
    layers: Layers = "all"

    def __post_init__(self):
        check_targets(self.targets)
        check_layers(self.layers)


@ADAPTERS.register("loha", LoHaOptions)
def loha(backbone, options: LoHaOptions):
    """LoHa (peft): a Hadamard product of two low-rank updates on the `targets` linear layers."""
    from peft import LoHaConfig

    config = LoHaConfig(r=options.rank, alpha=options.alpha, rank_dropout=options.rank_dropout,
                        module_dropout=options.module_dropout,
                        target_modules=resolve_targets(backbone, options.targets, options.layers))
    return peft_model(backbone, config)
