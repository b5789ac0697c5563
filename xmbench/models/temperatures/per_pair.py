"""A learnable temperature per modality pair: pairs that align differently get their own sharpness."""
from __future__ import annotations

from xmbench.models.temperatures.learnable import LearnableOptions
from xmbench.registry import TEMPERATURES


@TEMPERATURES.register("per_pair", LearnableOptions)
def per_pair(pairs: list[str], options: LearnableOptions):
    """One learnable temperature per modality pair, each clamped from below."""
    from xmbench.models.temperatures._scale import LogitScale

    return LogitScale(pairs, options.init, options.min, per_pair=True, learnable=True)
