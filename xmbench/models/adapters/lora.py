"""LoRA (Hu et al. 2021) through peft: a trainable low-rank update B·A beside each targeted linear layer."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Annotated

from xmbench.models.adapters._targets import freeze, resolve_targets
from xmbench.registry import ADAPTERS
from xmbench.schema import POSITIVE, PROBABILITY


@dataclass(frozen=True)
class LoraOptions:
    """Attributes:
    rank: r, the rank of the update.
    alpha: the update is scaled by alpha / rank.
    dropout: dropout on the adapter's input.
    targets: attention roles (query, key, value, output) or module names to adapt.
    """

    rank: Annotated[int, POSITIVE] = 8
    alpha: Annotated[float, POSITIVE] = 16.0
    dropout: Annotated[float, PROBABILITY] = 0.0
    targets: list[str] = field(default_factory=lambda: ["query", "value"])


@ADAPTERS.register("lora", LoraOptions)
def lora(backbone, options: LoraOptions):
    """LoRA (peft) of rank `rank` and scale alpha/rank on the `targets` linear layers."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=options.rank, lora_alpha=options.alpha, lora_dropout=options.dropout,
                        target_modules=resolve_targets(backbone, options.targets))
    with warnings.catch_warnings():  # peft still calls a transformers 5 deprecated property
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(freeze(backbone), config)
