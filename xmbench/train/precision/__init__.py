"""Registered precision policies: the numeric formats a model computes in, one module each.

A policy is applied inside the model's `encode` (per component: `context("tower/text")`), so
training, evaluation and the latency probes all run the precision that was trained. It may also
bring a gradient scaler (fp16) that the engine uses around backward and the optimizer step.
"""
from __future__ import annotations

from contextlib import nullcontext


class PrecisionPolicy:
    """Full precision: no autocast, no scaler. Policies override what they change."""

    name = "fp32"

    def context(self, component: str, device_type: str = "cpu"):
        """The context `component` (tower/<m>, head/<m>) computes in on a device of this type."""
        return nullcontext()

    def grad_scaler(self, device_type: str):
        """A torch GradScaler for formats that underflow (fp16), else None."""
        return None
