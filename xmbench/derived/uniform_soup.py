"""Uniform model soup (Wortsman et al. 2022): the element-wise mean of the inputs' trainable weights, one model.

The inputs must share architecture, adapter and foundation (refused clearly otherwise); with
`average = "all"` every floating-point tensor is averaged instead: inputs whose adapters a
transform merged into their weights, or full fine-tunes from one foundation. The recipe is
reported by `adapter_stats()["soup"]` (the record's profile.adapters.soup).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from xmbench.registry import DERIVED


@dataclass(frozen=True)
class UniformSoupOptions:
    """Attributes:
    average: trainable (adapters, heads, temperature; the rest must be equal in every input), or all floating-point tensors.
    """

    average: Literal["trainable", "all"] = "trainable"


@DERIVED.register("uniform_soup", UniformSoupOptions)
def uniform_soup(models: list, options: UniformSoupOptions, val=None, eval_config=None):
    """Uniform soup: the mean of the inputs' trainable weights (same architecture and foundation), one model's cost."""
    from xmbench.derived import _soup

    names = _soup.soup_names(models, "uniform_soup", options.average)
    soup = _soup.vessel(models)
    _soup.load(soup, _soup.average([_soup.ingredient(m, names) for m in models]))
    _soup.report(soup, {"method": "uniform", "average": options.average, "ingredients": list(range(len(models))),
                        "tensors": len(names)})
    return soup
