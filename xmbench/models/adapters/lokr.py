"""LoKr (Yeh et al. 2023, LyCORIS) through peft: a Kronecker-product update beside each targeted layer.

ΔW = (alpha / rank) · C ⊗ (B·A): a small full factor C (out₁ × in₁) Kronecker-multiplied with a
low-rank factor (out₂ × in₂, rank `rank`), with out₁·out₂ and in₁·in₂ the layer's shape (split by
`decompose_factor`; -1 splits near the square root). peft initialises one factor to zero: training
starts from the unadapted model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from xmbench.models.adapters._targets import Layers, check_layers, check_targets, peft_model, resolve_targets
from xmbench.registry import ADAPTERS
from xmbench.schema import POSITIVE, PROBABILITY


@dataclass(frozen=True)
class LoKrOptions:
    """Attributes:
    rank: r of the low-rank Kronecker factor.
    alpha: the update is scaled by alpha / rank.
    rank_dropout: dropout of whole ranks during training.
    module_dropout: probability of skipping an adapted layer's update during training.
    decompose_both: also factor the small Kronecker factor into a low-rank product.
    decompose_factor: the Kronecker split of each dimension; -1 splits near its square root.
    targets: roles (query, key, value, output = attention output, mlp_in, mlp_out) or module names to adapt.
    layers: transformer layers that get adapters: "all", "top:N", "bottom:N" or a list of indices (0 = first).
    """

    rank: Annotated[int, POSITIVE] = 8
    alpha: Annotated[float, POSITIVE] = 8.0
    rank_dropout: Annotated[float, PROBABILITY] = 0.0
    module_dropout: Annotated[float, PROBABILITY] = 0.0
    decompose_both: bool = False
    decompose_factor: int = -1
    targets: list[str] = field(default_factory=lambda: ["query", "value"])
    layers: Layers = "all"

    def __post_init__(self):
        check_targets(self.targets)
        check_layers(self.layers)


@ADAPTERS.register("lokr", LoKrOptions)
def lokr(backbone, options: LoKrOptions):
    """LoKr (peft): a Kronecker product of a small and a low-rank factor on the `targets` linear layers."""
    from peft import LoKrConfig

    config = LoKrConfig(r=options.rank, alpha=options.alpha, rank_dropout=options.rank_dropout,
                        module_dropout=options.module_dropout, decompose_both=options.decompose_both,
                        decompose_factor=options.decompose_factor,
                        target_modules=resolve_targets(backbone, options.targets, options.layers))
    return peft_model(backbone, config)
