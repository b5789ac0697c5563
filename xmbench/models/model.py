"""The cross-modal model protocol and the reference model (three towers, heads, temperature)."""
from __future__ import annotations

import importlib
import math
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import record_function

from xmbench.config import RunConfig
from xmbench.errors import ConfigError
from xmbench.registry import ADAPTERS, HEADS, TOWERS


@runtime_checkable
class CrossModalModel(Protocol):
    """What xmbench needs of any model: encode a modality's batch into L2-normalised embeddings.

    `inputs` are the preprocessed tensors of `xmbench.data.preprocess`: text `input_ids` and
    `attention_mask` (MiniLM tokenizer), image `pixel_values` (B, 3, H, W), audio
    `input_values` (B, frames, n_mels) log-mel. A user model plugs in with
    `model.factory = "package.module:function"`, the function taking the RunConfig.
    """

    modalities: tuple[str, ...]

    def encode(self, modality: str, inputs: dict[str, torch.Tensor]) -> torch.Tensor: ...


class ReferenceModel(nn.Module):
    """Towers with adapters, projection heads, and a learnable temperature clamped from below."""

    def __init__(self, towers: dict[str, nn.Module], heads: dict[str, nn.Module],
                 temperature: float, min_temperature: float):
        super().__init__()
        self.towers = nn.ModuleDict(towers)
        self.heads = nn.ModuleDict(heads)
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))
        self.max_log_logit_scale = math.log(1.0 / min_temperature)
        self.modalities = tuple(towers)

    def encode(self, modality: str, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        # profiler scopes: the trace and its per-tower split read these names
        with record_function(f"tower/{modality}"):
            features = self.towers[modality](inputs)
        with record_function(f"projection/{modality}"):
            return F.normalize(self.heads[modality](features).float(), dim=-1)

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.log_logit_scale.exp()

    def clamp_temperature(self) -> None:
        with torch.no_grad():
            self.log_logit_scale.clamp_(max=self.max_log_logit_scale)


def build_reference(config: RunConfig, modalities: tuple[str, ...],
                    foundation_state: dict[str, torch.Tensor] | None = None,
                    adapters: dict[str, str] | None = None) -> ReferenceModel:
    """Towers and heads, foundation weights loaded, then each tower's adapter applied.

    `adapters` overrides the adapter method per modality (the foundation stage passes
    full/frozen); otherwise each tower's configured adapter is used.
    """
    model_cfg = config.model
    towers = {}
    for m in modalities:
        tower_cfg = getattr(model_cfg, m)
        towers[m] = TOWERS.get(tower_cfg.arch)(tower_cfg.size, config.data, tower_cfg.dropout)
    heads = {m: HEADS.get(model_cfg.head)(towers[m].hidden_size, model_cfg.embed_dim) for m in modalities}
    model = ReferenceModel(towers, heads, model_cfg.temperature, model_cfg.min_temperature)
    if foundation_state is not None:
        # the foundation covers all three modalities; a dataset may have fewer
        own = model.state_dict()
        missing = [k for k in own if k not in foundation_state]
        if missing:
            raise ValueError(f"foundation checkpoint lacks {len(missing)} weights, e.g. {missing[0]}")
        model.load_state_dict({k: v for k, v in foundation_state.items() if k in own})
    for m in modalities:
        tower_cfg = getattr(model_cfg, m)
        method = (adapters or {}).get(m, tower_cfg.adapter.method)
        model.towers[m].backbone = ADAPTERS.get(method)(model.towers[m].backbone, tower_cfg.adapter)
    return model


def load_user_model(config: RunConfig) -> CrossModalModel:
    """Import `package.module:function` and call it with the RunConfig."""
    module_name, _, attr = config.model.factory.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"model.factory: cannot import '{config.model.factory}': {exc}") from None
    model = factory(config)
    if not isinstance(model, CrossModalModel):
        raise ConfigError(f"model.factory: '{config.model.factory}' returned {type(model).__name__}, "
                          "which has no `modalities` and `encode(modality, inputs)`")
    return model


def trainable_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def total_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_device(model) -> torch.device:
    """Where the model's parameters live (CPU for a model without any)."""
    parameters = getattr(model, "parameters", None)
    first = next(iter(parameters()), None) if parameters else None
    return first.device if first is not None else torch.device("cpu")


def to_device(inputs: dict[str, torch.Tensor], device: torch.device | str) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in inputs.items()}


def resolve_device(name: str) -> torch.device:
    """'cpu', 'cuda' or 'auto' (CUDA when present); asking for CUDA without one is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: 'cuda' was asked for but torch.cuda.is_available() is False "
                          "on this machine; use 'cpu' or 'auto'")
    return torch.device(name)
