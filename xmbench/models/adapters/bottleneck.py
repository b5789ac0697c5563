"""Serial bottleneck adapters: Houlsby et al. 2019 (after attention and after the FFN) or Pfeiffer et al. 2021 (after the FFN).

Each adapter follows a sublayer's output projection, before that output joins the residual
stream (and, in BERT, before its LayerNorm), with its own residual inside:

    y ↦ y + up(act(down(y))),   down: d → d / reduction,  up: d / reduction → d

`houlsby` puts one after the attention output projection (role `output`) and one after the FFN's
second linear (`mlp_out`) of each layer; `pfeiffer` only the FFN one. `up` starts at zero, so every
adapter is the identity at the start; only the adapters train. The modules are the adapter's own
(`_layers.SerialAdapter`); they are saved in trained.safetensors.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Annotated, Literal

from xmbench.models.adapters._targets import Layers, attach, check_layers, freeze, resolve_modules
from xmbench.models.adapters.parallel import REDUCTION, Activation, adapter_stats
from xmbench.registry import ADAPTERS

STYLES = {"houlsby": ["output", "mlp_out"], "pfeiffer": ["mlp_out"]}


@dataclass(frozen=True)
class BottleneckOptions:
    """Attributes:
    style: houlsby (after attention and after the FFN) or pfeiffer (after the FFN only).
    reduction: the bottleneck is hidden size // reduction wide (2…64).
    activation: nonlinearity of the bottleneck: relu, gelu, silu or tanh.
    layers: transformer layers that get adapters: "all", "top:N", "bottom:N" or a list of indices (0 = first).
    """

    style: Literal["houlsby", "pfeiffer"] = "houlsby"
    reduction: Annotated[int, REDUCTION] = 16
    activation: Activation = "relu"
    layers: Layers = "all"

    def __post_init__(self):
        check_layers(self.layers)


@ADAPTERS.register("bottleneck", BottleneckOptions)
def bottleneck(backbone, options: BottleneckOptions):
    """Serial bottleneck adapters y + up(act(down(y))) after sublayer outputs (houlsby or pfeiffer placement)."""
    from xmbench.models.adapters._layers import SerialAdapter, replace_module

    freeze(backbone)
    for name in resolve_modules(backbone, STYLES[options.style], options.layers):
        replace_module(backbone, name, SerialAdapter(backbone.get_submodule(name), options.reduction, options.activation))
    return attach(backbone, stats=partial(adapter_stats, backbone))
