"""(IA)³ (Liu et al. 2022) through peft: learned vectors that rescale the activations of the targeted layers.

Each targeted linear layer y = W·x gains one trainable vector l, initialised to ones: attention
projections are rescaled at their output (y = l ⊙ W·x); the FFN's second linear (role `mlp_out`,
peft's "feedforward" modules) at its input (y = W·(l ⊙ x)), the paper's rescaling of the FFN's
inner activation. Training starts from the unadapted model.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from xmbench.models.adapters._targets import Layers, check_layers, check_targets, peft_model, resolve_modules
from xmbench.registry import ADAPTERS


@dataclass(frozen=True)
class IA3Options:
    """Attributes:
    targets: roles (query, key, value, output, mlp_in, mlp_out) or module names; mlp_out is rescaled at its input.
    layers: transformer layers that get vectors: "all", "top:N", "bottom:N" or a list of indices (0 = first).
    """

    targets: list[str] = field(default_factory=lambda: ["key", "value", "mlp_out"])
    layers: Layers = "all"

    def __post_init__(self):
        check_targets(self.targets)
        check_layers(self.layers)


@ADAPTERS.register("ia3", IA3Options)
def ia3(backbone, options: IA3Options):
    """(IA)³ (peft): a trainable scaling vector per targeted layer (input side for the FFN's mlp_out)."""
    from peft import IA3Config

    targets = resolve_modules(backbone, options.targets, options.layers)  # full names: peft matches feedforward
    feedforward = set(resolve_modules(backbone, ["mlp_out"], options.layers)) & set(targets)  # by suffix, unsafely
    config = IA3Config(target_modules=targets, feedforward_modules=sorted(feedforward))
    return peft_model(backbone, config)
