"""Full fine-tuning: every backbone parameter trains (the foundation stage uses it)."""
from __future__ import annotations

from xmbench.registry import ADAPTERS


@ADAPTERS.register("full")
def full(backbone, options):
    """Full fine-tuning: every backbone parameter trains (the foundation stage uses this)."""
    return backbone.requires_grad_(True)
