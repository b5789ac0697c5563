"""The optimizer and its parameter groups: one group per model component, each with an lr multiplier.

Components are the model's own names for its parts (tower/<modality>, head/<modality>,
temperature for the reference model). `train.lr_scale` maps component patterns to multipliers
(`{ "tower/*" = 0.1, temperature = 0 }`; the first matching pattern wins, unmatched components
keep 1); the schedule sets each group's lr to base lr × schedule × its multiplier, so per-encoder
learning rates survive the schedule. Parameters that start training later (unfreezing) join their
component's group, or a new one, through `sync`.
"""
from __future__ import annotations

from fnmatch import fnmatch

import torch

from xmbench.config import TrainConfig
from xmbench.errors import ConfigError
from xmbench.models import capabilities


class ParameterGroups:
    """The model's trainable parameters grouped by component, with their lr multipliers."""

    def __init__(self, model, lr_scale: dict[str, float]):
        self.model = model
        self.lr_scale = dict(lr_scale)
        known = {capabilities.component_of(model, name) for name, _ in capabilities.named_parameters(model)}
        for pattern in self.lr_scale:
            if not any(fnmatch(c, pattern) for c in known):
                raise ConfigError(f"train.lr_scale.{pattern}: matches no component of the model; "
                                  f"components: {', '.join(sorted(known))}")

    def scale(self, component: str) -> float:
        return next((s for pattern, s in self.lr_scale.items() if fnmatch(component, pattern)), 1.0)

    def trainable(self) -> list[torch.nn.Parameter]:
        """Trainable parameters in the model's order (the order clipping sums norms in)."""
        return capabilities.trainable_parameters(self.model)

    def _grouped(self, parameters) -> dict[str, list[torch.nn.Parameter]]:
        wanted = {id(p) for p in parameters}
        groups: dict[str, list] = {}
        for name, parameter in capabilities.named_parameters(self.model):
            if id(parameter) in wanted:
                groups.setdefault(capabilities.component_of(self.model, name), []).append(parameter)
        return groups

    def build(self, cfg: TrainConfig) -> torch.optim.Optimizer:
        """AdamW over one group per component that has trainable parameters."""
        groups = [{"params": params, "component": component, "lr_scale": self.scale(component)}
                  for component, params in self._grouped(self.trainable()).items()]
        if not groups:  # nothing trains (e.g. a frozen user model): a valid, empty optimizer
            groups = [{"params": [], "component": "none", "lr_scale": 1.0}]
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def sync(self, optimizer: torch.optim.Optimizer) -> None:
        """Add parameters that train now but are in no group yet (unfrozen since the optimizer was built)."""
        present = {id(p) for group in optimizer.param_groups for p in group["params"]}
        new = [p for p in self.trainable() if id(p) not in present]
        for component, params in self._grouped(new).items():
            group = next((g for g in optimizer.param_groups if g.get("component") == component), None)
            if group is None:
                optimizer.add_param_group({"params": params, "component": component, "lr_scale": self.scale(component)})
            else:
                group["params"].extend(params)


def set_learning_rate(optimizer: torch.optim.Optimizer, base_lr: float) -> None:
    """The scheduled base rate, times each group's multiplier."""
    for group in optimizer.param_groups:
        group["lr"] = base_lr * group["lr_scale"]
