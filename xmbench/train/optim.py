"""The optimizer and its parameter groups: one group per model component, each with an lr multiplier.

Components are the model's own names for its parts (tower/<modality>, head/<modality>,
temperature for the reference model; `loss` for a loss's own learnable values). `train.lr_scale`
maps component patterns to multipliers (`{ "tower/*" = 0.1, temperature = 0 }`; the first matching
pattern wins, unmatched components keep 1); `train.layer_decay` < 1 splits each tower by layer
and multiplies layer l of L by decay^(L − 1 − l) (embeddings below the first layer by decay^L),
so the layers nearest the output learn fastest (layer-wise lr decay). The schedule sets each
group's lr to base lr × schedule × its multiplier, so per-encoder rates survive the schedule.
Parameters that start training later (unfreezing) join their group, or a new one, through `sync`.
"""
from __future__ import annotations

import re
from fnmatch import fnmatch

import torch

from xmbench.config import TrainConfig
from xmbench.errors import ConfigError
from xmbench.models import capabilities

LAYER = re.compile(r"\.layers?\.(\d+)\.")  # BERT encoder.layer.N, ViT/AST layers.N


class ParameterGroups:
    """The model's trainable parameters (and the loss's own) grouped by component, with their lr multipliers."""

    def __init__(self, model, lr_scale: dict[str, float], layer_decay: float = 1.0,
                 extra: dict[str, torch.nn.Parameter] | None = None):
        self.model = model
        self.lr_scale = dict(lr_scale)
        self.layer_decay = layer_decay
        self.extra = dict(extra or {})
        known = {self.component_of(name) for name, _ in self.named()}
        for pattern in self.lr_scale:
            if not any(fnmatch(c, pattern) for c in known):
                raise ConfigError(f"train.lr_scale.{pattern}: matches no component of the model; "
                                  f"components: {', '.join(sorted(known))}")
        self.depth = self._depths() if layer_decay != 1.0 else {}

    def named(self) -> list[tuple[str, torch.nn.Parameter]]:
        return list(capabilities.named_parameters(self.model)) + [(f"loss.{k}", p) for k, p in self.extra.items()]

    def component_of(self, name: str) -> str:
        return "loss" if name.startswith("loss.") else capabilities.component_of(self.model, name)

    def scale(self, component: str) -> float:
        return next((s for pattern, s in self.lr_scale.items() if fnmatch(component, pattern)), 1.0)

    def trainable(self) -> list[torch.nn.Parameter]:
        """Trainable parameters in the model's order (the order clipping sums norms in), the loss's last."""
        return [p for _, p in self.named() if p.requires_grad]

    def _depths(self) -> dict[str, int]:
        """Layers per tower component (the highest layer index seen, plus one)."""
        depths: dict[str, int] = {}
        for name, _ in self.named():
            component, match = self.component_of(name), LAYER.search(name)
            if match and component.startswith("tower/"):
                depths[component] = max(depths.get(component, 0), int(match.group(1)) + 1)
        return depths

    def _group_of(self, name: str) -> tuple[str, float]:
        """(group name, lr multiplier) of a parameter."""
        component = self.component_of(name)
        if component not in self.depth:
            return component, self.scale(component)
        match = LAYER.search(name)
        layer = int(match.group(1)) if match else -1  # below the first layer: embeddings
        decay = self.layer_decay ** (self.depth[component] - 1 - layer)
        return f"{component}@{layer}", self.scale(component) * decay

    def _grouped(self, parameters) -> dict[str, tuple[float, list[torch.nn.Parameter]]]:
        wanted = {id(p) for p in parameters}
        groups: dict[str, tuple[float, list]] = {}
        for name, parameter in self.named():
            if id(parameter) in wanted:
                group, scale = self._group_of(name)
                groups.setdefault(group, (scale, []))[1].append(parameter)
        return groups

    def build(self, cfg: TrainConfig) -> torch.optim.Optimizer:
        """AdamW over one group per component (per layer with layer decay) that has trainable parameters."""
        groups = [{"params": params, "component": group, "lr_scale": scale}
                  for group, (scale, params) in self._grouped(self.trainable()).items()]
        if not groups:  # nothing trains (e.g. a frozen user model): a valid, empty optimizer
            groups = [{"params": [], "component": "none", "lr_scale": 1.0}]
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def sync(self, optimizer: torch.optim.Optimizer) -> None:
        """Add parameters that train now but are in no group yet (unfrozen since the optimizer was built)."""
        present = {id(p) for group in optimizer.param_groups for p in group["params"]}
        new = [p for p in self.trainable() if id(p) not in present]
        for group_name, (scale, params) in self._grouped(new).items():
            group = next((g for g in optimizer.param_groups if g.get("component") == group_name), None)
            if group is None:
                optimizer.add_param_group({"params": params, "component": group_name, "lr_scale": scale})
            else:
                group["params"].extend(params)


def set_learning_rate(optimizer: torch.optim.Optimizer, base_lr: float) -> None:
    """The scheduled base rate, times each group's multiplier."""
    for group in optimizer.param_groups:
        group["lr"] = base_lr * group["lr_scale"]
