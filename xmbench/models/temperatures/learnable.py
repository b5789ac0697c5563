"""One learnable temperature shared by every modality pair (CLIP's)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from xmbench.errors import ConfigError
from xmbench.registry import TEMPERATURES
from xmbench.schema import POSITIVE


@dataclass(frozen=True)
class LearnableOptions:
    """Attributes:
    init: the temperature at the start.
    min: the temperature is clamped from below here (CLIP: 0.01, a logit scale of 100).
    """

    init: Annotated[float, POSITIVE] = 0.07
    min: Annotated[float, POSITIVE] = 0.01

    def __post_init__(self):
        if self.init < self.min:
            raise ConfigError(f"init: {self.init} is below min {self.min}")


@TEMPERATURES.register("learnable", LearnableOptions)
def learnable(pairs: list[str], options: LearnableOptions):
    """One learnable temperature for every pair, clamped from below (CLIP)."""
    from xmbench.models.temperatures._scale import LogitScale

    return LogitScale(pairs, options.init, options.min, per_pair=False, learnable=True)
