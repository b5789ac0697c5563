"""Mixed precision: chosen components compute in bf16 or fp16 under torch.autocast, the rest in fp32."""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from fnmatch import fnmatch
from typing import Literal

from xmbench.lazy import torch
from xmbench.registry import PRECISIONS
from xmbench.train.precision import PrecisionPolicy


@dataclass(frozen=True)
class AutocastOptions:
    """Attributes:
    dtype: bf16 (no scaler needed) or fp16 (a gradient scaler guards against underflow).
    components: patterns of the components that compute in low precision (tower/<m>, head/<m>); the rest is fp32.
    """

    dtype: Literal["bf16", "fp16"] = "bf16"
    components: list[str] = field(default_factory=lambda: ["tower/*"])


class Autocast(PrecisionPolicy):
    def __init__(self, options: AutocastOptions):
        self.options = options
        self.name = f"autocast-{options.dtype}"
        self.dtype = torch.bfloat16 if options.dtype == "bf16" else torch.float16

    def context(self, component: str, device_type: str = "cpu"):
        if any(fnmatch(component, p) for p in self.options.components):
            return torch.autocast(device_type=device_type, dtype=self.dtype)
        return nullcontext()

    def grad_scaler(self, device_type: str):
        if self.options.dtype != "fp16":
            return None
        return torch.amp.GradScaler(device_type)


@PRECISIONS.register("autocast", AutocastOptions)
def autocast(options: AutocastOptions) -> Autocast:
    """Autocast the chosen components (towers by default) to bf16 or fp16 (with a gradient scaler); fp32 elsewhere."""
    return Autocast(options)
