"""The logit-scale module behind every temperature technique (torch: imported by their builders)."""
from __future__ import annotations

import math

import torch
from torch import nn


class LogitScale(nn.Module):
    """log(1 / temperature), one shared or one per pair, learnable or fixed, clamped at a minimum temperature.

    Learnt in log space (CLIP): the scale stays positive and its steps are relative.
    """

    def __init__(self, pairs: list[str], init: float, minimum: float, per_pair: bool, learnable: bool):
        super().__init__()
        self.per_pair, self.max_log_scale = per_pair, math.log(1.0 / minimum)
        value = torch.tensor(math.log(1.0 / init))
        if per_pair:
            self.log_scales = nn.ParameterDict({p: nn.Parameter(value.clone(), requires_grad=learnable) for p in pairs})
        else:
            self.log_scale = nn.Parameter(value, requires_grad=learnable)

    def scales(self, pairs: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
        names = [f"{a}-{b}" for a, b in pairs]
        if self.per_pair:
            return {name: self.log_scales[name].exp() for name in names}
        scale = self.log_scale.exp()  # computed once: its gradient sums over the pairs
        return dict.fromkeys(names, scale)

    def clamp(self) -> None:
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.clamp_(max=self.max_log_scale)
