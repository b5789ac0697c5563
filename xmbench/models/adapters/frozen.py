"""A frozen backbone: only the projection head and temperature train (linear probing)."""
from __future__ import annotations

from xmbench.models.adapters._targets import freeze
from xmbench.registry import ADAPTERS


@ADAPTERS.register("frozen")
def frozen(backbone, options):
    """The backbone stays fixed; only the projection head and temperature train."""
    return freeze(backbone)
