"""Parallel adapters (He et al. 2022): a bottleneck beside the attention and/or FFN sublayer, scaled by s.

For a sublayer f with input x (the hidden states it reads: after the pre-LN of ViT/AST, the
residual stream for post-LN BERT) its output becomes

    f(x) + s · up(act(down(x))),   down: d → d / reduction,  up: d / reduction → d

added where f's output joins the residual stream (before BERT's LayerNorm). `up` starts at zero,
so training starts from the unadapted model; only the adapters (and s, with learn_scale) train.
The modules are the adapter's own (`_layers.ParallelAdapter`, wrapping ViT/AST `attention` and
`mlp`, BERT `attention.output` and `output`); they are saved in trained.safetensors.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Annotated, Literal

from xmbench.errors import ConfigError
from xmbench.models.adapters._targets import Layers, attach, check_layers, freeze, layer_blocks, trainable_count
from xmbench.registry import ADAPTERS
from xmbench.schema import Range

REDUCTION = Range(2, 64)
Activation = Literal["relu", "gelu", "silu", "tanh"]

# Sublayer → (path inside a layer, how the adapter joins it), per layer layout.
POST_LN = {"attention": ("attention.output", "residual"), "ffn": ("output", "residual")}  # BERT
PRE_LN = {"attention": ("attention", "output"), "ffn": ("mlp", "output")}  # ViT, AST (transformers 5)


@dataclass(frozen=True)
class ParallelOptions:
    """Attributes:
    position: beside which sublayer of each layer: attention, ffn or both.
    reduction: the bottleneck is hidden size // reduction wide (2…64).
    scale: s, the factor of the adapter's output.
    learn_scale: train s (one per adapter, starting at scale).
    activation: nonlinearity of the bottleneck: relu, gelu, silu or tanh.
    layers: transformer layers that get adapters: "all", "top:N", "bottom:N" or a list of indices (0 = first).
    """

    position: Literal["attention", "ffn", "both"] = "ffn"
    reduction: Annotated[int, REDUCTION] = 16
    scale: float = 1.0
    learn_scale: bool = False
    activation: Activation = "relu"
    layers: Layers = "all"

    def __post_init__(self):
        check_layers(self.layers)


def sublayer_sites(backbone, position: str, layers: Layers = "all") -> list[tuple[str, str]]:
    """(full name, join) of each sublayer a parallel adapter goes beside."""
    wanted = ("attention", "ffn") if position == "both" else (position,)
    names = {n for n, _ in backbone.named_modules()}
    sites = []
    for _, block in layer_blocks(backbone, layers):
        layout = POST_LN if f"{block}.intermediate" in names else PRE_LN if f"{block}.mlp" in names else None
        if layout is None:
            raise ConfigError(f"parallel adapter: the layers of {type(backbone).__name__} are neither BERT-like "
                              "(attention, intermediate, output) nor ViT-like (attention, mlp)")
        sites += [(f"{block}.{layout[w][0]}", layout[w][1]) for w in wanted]
    return sites


@ADAPTERS.register("parallel", ParallelOptions)
def parallel(backbone, options: ParallelOptions):
    """Parallel adapters: f(x) + s·up(act(down(x))) beside the attention and/or FFN sublayers (up zero-initialised)."""
    from xmbench.models.adapters._layers import ParallelAdapter, replace_module

    dim = backbone.config.hidden_size
    freeze(backbone)
    for name, into in sublayer_sites(backbone, options.position, options.layers):
        replace_module(backbone, name, ParallelAdapter(backbone.get_submodule(name), dim, options.reduction,
                                                       options.activation, options.scale, options.learn_scale, into))
    return attach(backbone, stats=partial(adapter_stats, backbone))


def adapter_stats(backbone) -> dict:
    from xmbench.models.adapters._layers import ParallelAdapter, SerialAdapter

    adapters = {n: m for n, m in backbone.named_modules() if isinstance(m, ParallelAdapter | SerialAdapter)}
    stats = {"adapters": len(adapters), "adapter_params": sum(trainable_count(m.adapter) for m in adapters.values()),
             "bottleneck": next((m.adapter.down.out_features for m in adapters.values()), 0)}
    scales = {n: m.scale.item() for n, m in adapters.items() if not isinstance(getattr(m, "scale", 0.0), float)}
    if scales:
        stats["scales"] = scales
    return stats
