"""Post-training quantisation of chosen components (tower/<m>, head/<m>): dynamic int8, fp16/bf16 casts, torchao weight-only.

- `dynamic_int8` (CPU): torch.ao's dynamic quantisation of every nn.Linear of the component: int8
  weights (one scale per output channel with `per_channel`, else one per layer), activations
  quantised per batch on the fly with one scale per tensor, so layers fed by outlier-heavy
  activations lose most (BERT's FFN output layers: keep them fp32 with `exclude`, see
  benchmarks/quantization.py for what it costs in accuracy). It cannot quantise a layer inside an
  unmerged peft adapter (peft reads the wrapped layer's `.weight`), so low-rank adapters are merged
  into their base weights first (`merge_first`, what the `merge` transform does); without merging,
  the layers inside a peft adapter stay fp32. Embedding and convolution layers stay fp32.
- `fp16` / `bf16`: the component's floating-point weights are cast; a forward pre-hook casts its
  floating-point inputs to that dtype and a forward hook casts its floating-point outputs back to
  fp32, so the model's `encode` and the components around it are unchanged.
- `int8_weight_only` / `int4_weight_only` (CUDA): torchao's weight-only quantisation of nn.Linear
  (int4 computes in bf16: the component is cast to bf16 as with `bf16`). Needs torchao and a GPU.

The model's `components()` names what can be chosen (patterns as in fnmatch); each quantised
component is reported by `model.quantized` {component: method}.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatch
from typing import Literal

from xmbench.errors import ConfigError
from xmbench.registry import TRANSFORMS

FLOAT_DTYPES = {"fp16": "float16", "bf16": "bfloat16"}


@dataclass(frozen=True)
class QuantizeOptions:
    """Attributes:
    method: dynamic_int8 (CPU, torch.ao), fp16 or bf16 (weight casts), int8_weight_only or int4_weight_only (torchao, CUDA).
    components: patterns of the components to quantise (tower/<m>, head/<m>); the others stay as they are.
    merge_first: merge low-rank adapters into their base weights first, so adapted layers are quantised too (int8 methods).
    per_channel: dynamic_int8: one weight scale per output channel (more accurate) instead of one per layer.
    exclude: dynamic_int8: fnmatch patterns of Linear layer names inside a component kept fp32 (*.layer.?.output.dense).
    """

    method: Literal["dynamic_int8", "fp16", "bf16", "int8_weight_only", "int4_weight_only"] = "dynamic_int8"
    components: list[str] = field(default_factory=lambda: ["tower/*"])
    merge_first: bool = True
    per_channel: bool = True
    exclude: list[str] = field(default_factory=list)

    def __post_init__(self):
        if not self.components:
            raise ConfigError("components: name at least one component pattern (tower/<m>, head/<m>, tower/*)")


def chosen_components(model, patterns: list[str]) -> dict:
    """{name: module} of the model's components matching any pattern; an error for a pattern matching none."""
    from xmbench.models import capabilities

    named = capabilities.components(model)
    if not named:
        raise ConfigError(f"quantize: {type(model).__name__} names no components (a `components()` method), so "
                          f"there is nothing to choose")
    for pattern in patterns:
        if not any(fnmatch(name, pattern) for name in named):
            raise ConfigError(f"quantize.components: '{pattern}' matches none of the model's components "
                              f"({', '.join(named)})")
    return {name: module for name, module in named.items() if any(fnmatch(name, p) for p in patterns)}


def _replace(model, old, new) -> None:
    """Put `new` wherever `old` is a child in the model (the component a quantiser returned anew)."""
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if child is old:
                setattr(parent, name, new)


def _device_type(module) -> str:
    first = next(module.parameters(), None)
    return first.device.type if first is not None else "cpu"


def _unwrapped_linears(module) -> list[str]:
    """Names of the nn.Linear layers of `module` that are not inside a peft adapter layer."""
    from peft.tuners.tuners_utils import BaseTunerLayer
    from torch import nn

    inside = set()
    for name, sub in module.named_modules():
        if isinstance(sub, BaseTunerLayer):
            inside |= {f"{name}.{n}" if n else name for n, _ in sub.named_modules()}
    return [name for name, sub in module.named_modules() if type(sub) is nn.Linear and name not in inside]


def dynamic_int8(module, component: str, per_channel: bool = True, exclude: tuple[str, ...] = ()) -> tuple:
    """Every plain nn.Linear of the module (outside unmerged peft adapters, not excluded) as a dynamically
    quantised int8 Linear; returns (the module, the names of the layers that were quantised)."""
    import warnings

    import torch
    from torch import nn
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig

    if _device_type(module) != "cpu":
        raise ConfigError(f"quantize: dynamic_int8 runs on CPU only (torch.ao has no CUDA kernels for it) and "
                          f"{component} is on {_device_type(module)}; use int8_weight_only (torchao) or bf16 there")
    holder = nn.Sequential(module)  # a component that is itself a Linear (a linear head) is swapped too
    names = [n for n in _unwrapped_linears(module) if not any(fnmatch(n, p) for p in exclude)]
    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    targets = {f"0.{n}" if n else "0": qconfig for n in names}
    if not targets:
        return module, []
    with warnings.catch_warnings():  # torch.ao eager quantisation is deprecated in favour of torchao, still present
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*torchao.*")
        torch.ao.quantization.quantize_dynamic(holder, targets, dtype=torch.qint8, inplace=True)
    return holder[0], names


def _cast(value, dtype):
    """Floating-point tensors in value (a tensor, or one inside a tuple, list or dict) cast to dtype; the rest as is."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() and value.dtype != dtype else value
    if isinstance(value, (tuple, list)):
        return type(value)(_cast(v, dtype) for v in value)
    if isinstance(value, dict):
        return type(value)({k: _cast(v, dtype) for k, v in value.items()})
    return value


def cast_component(module, dtype_name: str):
    """The module's weights in fp16/bf16, its floating inputs cast to match and its floating outputs back to fp32."""
    import torch

    dtype = getattr(torch, FLOAT_DTYPES[dtype_name])
    module.to(dtype)

    def inputs_hook(_module, args, kwargs):
        return _cast(args, dtype), _cast(kwargs, dtype)

    def outputs_hook(_module, _args, output):
        return _cast(output, torch.float32)

    module.register_forward_pre_hook(inputs_hook, with_kwargs=True)
    module.register_forward_hook(outputs_hook)
    return module


def torchao_weight_only(module, component: str, bits: int):
    """torchao's int8 / int4 weight-only quantisation of the module's nn.Linear layers (CUDA)."""
    try:
        import torchao.quantization as tq
    except ImportError:
        raise ConfigError(f"quantize: int{bits}_weight_only needs torchao, which is not installed here "
                          f"(pip install torchao); dynamic_int8, fp16 and bf16 need nothing more") from None
    if _device_type(module) != "cuda":
        raise ConfigError(f"quantize: int{bits}_weight_only needs CUDA (torchao's weight-only kernels) and "
                          f"{component} is on {_device_type(module)}; on CPU use dynamic_int8")
    if bits == 4:
        cast_component(module, "bf16")  # int4 weight-only kernels compute in bf16
    config_class = getattr(tq, f"Int{bits}WeightOnlyConfig", None)
    config = config_class() if config_class is not None else getattr(tq, f"int{bits}_weight_only")()
    tq.quantize_(module, config)
    return module


@TRANSFORMS.register("quantize", QuantizeOptions)
def quantize(model, options: QuantizeOptions):
    """Quantise chosen components after training: dynamic int8 (CPU), fp16/bf16 casts, torchao int8/int4 weight-only (GPU)."""
    from xmbench.models.transforms.merge import merge

    chosen = chosen_components(model, options.components)
    if options.exclude and options.method != "dynamic_int8":
        raise ConfigError(f"quantize.exclude: applies to dynamic_int8 only, not {options.method}")
    done = dict(getattr(model, "quantized", {}) or {})
    excluded = set()
    for name, module in chosen.items():
        if name in done:
            raise ConfigError(f"quantize: {name} is already quantised ({done[name]}); list each component in one "
                              f"quantize transform only")
        if options.merge_first and options.method not in FLOAT_DTYPES:
            merge(module, None)
        if options.method == "dynamic_int8":
            everything = _unwrapped_linears(module)
            new, _ = dynamic_int8(module, name, options.per_channel, tuple(options.exclude))
            excluded |= {p for p in options.exclude if any(fnmatch(n, p) for n in everything)}
        elif options.method in FLOAT_DTYPES:
            new = cast_component(module, options.method)
        else:
            new = torchao_weight_only(module, name, 8 if options.method == "int8_weight_only" else 4)
        if new is not module:
            _replace(model, module, new)
        done[name] = options.method
    unused = [p for p in options.exclude if p not in excluded]
    if unused:
        raise ConfigError(f"quantize.exclude: '{unused[0]}' matches no Linear layer of {', '.join(chosen)}")
    model.quantized = done
    return model
