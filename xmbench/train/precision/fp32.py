"""fp32 everywhere: the reference precision."""
from __future__ import annotations

from xmbench.registry import PRECISIONS
from xmbench.train.precision import PrecisionPolicy


@PRECISIONS.register("fp32")
def fp32(options) -> PrecisionPolicy:
    """Full fp32 in every component (the reference)."""
    return PrecisionPolicy()
