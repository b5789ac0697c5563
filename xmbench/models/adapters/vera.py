"""VeRA (Kopiczko et al. 2024) through peft: frozen random low-rank matrices shared by all layers, trained scaling vectors.

ΔW·x = Λ_b · B · Λ_d · A · x with A (rank × in) and B (out × rank) random, frozen and shared by every
targeted layer (drawn from `projection_prng_key`, sliced to each layer's shape), and per layer two
trainable vectors: d (rank, initialised to `d_initial`) and b (out, initialised to zero), so
training starts from the unadapted model. The shared projections are saved with the adapter.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from xmbench.models.adapters._targets import Layers, check_layers, check_targets, peft_model, resolve_targets
from xmbench.registry import ADAPTERS
from xmbench.schema import POSITIVE, PROBABILITY


@dataclass(frozen=True)
class VeraOptions:
    """Attributes:
    rank: r of the shared random projections (VeRA uses far larger ranks than LoRA at the same cost).
    d_initial: initial value of each layer's rank-side scaling vector d.
    dropout: dropout on the adapter's input.
    projection_prng_key: seed of the shared random projections.
    targets: roles (query, key, value, output = attention output, mlp_in, mlp_out) or module names to adapt.
    layers: transformer layers that get adapters: "all", "top:N", "bottom:N" or a list of indices (0 = first).
    """

    rank: Annotated[int, POSITIVE] = 256
    d_initial: float = 0.1
    dropout: Annotated[float, PROBABILITY] = 0.0
    projection_prng_key: int = 0
    targets: list[str] = field(default_factory=lambda: ["query", "value"])
    layers: Layers = "all"

    def __post_init__(self):
        check_targets(self.targets)
        check_layers(self.layers)


@ADAPTERS.register("vera", VeraOptions)
def vera(backbone, options: VeraOptions):
    """VeRA (peft): trained scaling vectors around frozen random projections shared across layers."""
    from peft import VeraConfig

    config = VeraConfig(r=options.rank, d_initial=options.d_initial, vera_dropout=options.dropout,
                        projection_prng_key=options.projection_prng_key, save_projection=True,
                        target_modules=resolve_targets(backbone, options.targets, options.layers))
    return peft_model(backbone, config)
