"""LoRA (Hu et al. 2021) through peft: a trainable low-rank update B·A beside each targeted linear layer.

`use_dora` makes it DoRA (Liu et al. 2024, peft's implementation): the adapted weight is split into a
trainable magnitude per output row and a direction W + B·A normalised per row.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from xmbench.models.adapters._targets import Layers, check_layers, check_targets, peft_model, resolve_targets
from xmbench.registry import ADAPTERS
from xmbench.schema import POSITIVE, PROBABILITY


@dataclass(frozen=True)
class LoraOptions:
    """Attributes:
    rank: r, the rank of the update.
    alpha: the update is scaled by alpha / rank.
    dropout: dropout on the adapter's input.
    targets: roles (query, key, value, output = attention output, mlp_in, mlp_out) or module names to adapt.
    layers: transformer layers that get adapters: "all", "top:N", "bottom:N" or a list of indices (0 = first).
    use_dora: DoRA: a trainable magnitude per output row besides the low-rank direction update.
    """

    rank: Annotated[int, POSITIVE] = 8
    alpha: Annotated[float, POSITIVE] = 16.0
    dropout: Annotated[float, PROBABILITY] = 0.0
    targets: list[str] = field(default_factory=lambda: ["query", "value"])
    layers: Layers = "all"
    use_dora: bool = False

    def __post_init__(self):
        check_targets(self.targets)
        check_layers(self.layers)


@ADAPTERS.register("lora", LoraOptions)
def lora(backbone, options: LoraOptions):
    """LoRA (peft) of rank `rank` and scale alpha/rank on the `targets` linear layers (DoRA with use_dora)."""
    from peft import LoraConfig

    config = LoraConfig(r=options.rank, lora_alpha=options.alpha, lora_dropout=options.dropout,
                        target_modules=resolve_targets(backbone, options.targets, options.layers),
                        use_dora=options.use_dora)
    return peft_model(backbone, config)
