"""A fixed temperature: not learnt."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from xmbench.registry import TEMPERATURES
from xmbench.schema import POSITIVE


@dataclass(frozen=True)
class FixedOptions:
    """Attributes:
    value: the temperature of every pair.
    """

    value: Annotated[float, POSITIVE] = 0.07


@TEMPERATURES.register("fixed", FixedOptions)
def fixed(pairs: list[str], options: FixedOptions):
    """A fixed temperature for every pair (not learnt)."""
    from xmbench.models.temperatures._scale import LogitScale

    return LogitScale(pairs, options.value, options.value, per_pair=False, learnable=False)
