"""Injected faults: regressions made on purpose, to show that comparisons and gates catch them.

Set XMBENCH_FAULT to a comma-separated list; the config (and so the variant id) is untouched,
exactly as a regressing code change would leave it:
    slowdown=0.3         every encode call takes 30% longer (the measured query path slows)
    embedding_noise=0.5  Gaussian noise of that scale added to embeddings, then renormalised
    cripple_adapters     LoRA B matrices zeroed after training: the adapters stop contributing
The fault is recorded with the environment of every record it touched.
"""
from __future__ import annotations

import os
import time

import torch
import torch.nn.functional as F

from xmbench.errors import ConfigError

ENV_VAR = "XMBENCH_FAULT"
KNOWN = ("slowdown", "embedding_noise", "cripple_adapters")


def active() -> dict[str, float]:
    faults = {}
    for item in filter(None, (x.strip() for x in os.environ.get(ENV_VAR, "").split(","))):
        name, _, value = item.partition("=")
        if name not in KNOWN:
            raise ConfigError(f"{ENV_VAR}: unknown fault '{name}'; known: {', '.join(KNOWN)}")
        faults[name] = float(value) if value else 1.0
    return faults


def inject(model) -> None:
    """Apply the active faults to a trained model, in place."""
    faults = active()
    if "cripple_adapters" in faults:
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if "lora_B" in name:
                    parameter.zero_()
    if "slowdown" in faults or "embedding_noise" in faults:
        model.encode = _faulty_encode(model.encode, faults.get("slowdown", 0.0), faults.get("embedding_noise", 0.0))


def _faulty_encode(encode, slowdown: float, noise: float):
    generator = torch.Generator().manual_seed(0)

    def faulty(modality, inputs):
        started = time.perf_counter()
        out = encode(modality, inputs)
        if noise:
            out = F.normalize(out + noise * torch.randn(out.shape, generator=generator).to(out.device), dim=-1)
        if slowdown:  # busy-wait: sleep's wake-up latency alone would add ~0.1 ms to a 2 ms path
            deadline = time.perf_counter() + slowdown * (time.perf_counter() - started)
            while time.perf_counter() < deadline:
                pass
        return out

    return faulty
