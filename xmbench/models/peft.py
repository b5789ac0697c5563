"""Registered adapter methods: how a tower's backbone is made trainable.

Each method takes the backbone and its AdapterConfig and returns the backbone to train, with
`requires_grad` set on exactly the parameters it tunes. LoRA goes through the `peft` library,
so adapters are saved in peft's own format and load with `PeftModel.from_pretrained`.
"""
from __future__ import annotations

import warnings
from pathlib import Path

from torch import nn

from xmbench.config import AdapterConfig
from xmbench.errors import ConfigError
from xmbench.registry import ADAPTERS


def _freeze(module: nn.Module) -> nn.Module:
    module.requires_grad_(False)
    return module


# Attention projections are named differently across transformers models and versions
# (BERT: query/value; ViT and AST in transformers 5: q_proj/v_proj): suites use the roles.
ROLE_NAMES = {"query": ("query", "q_proj"), "key": ("key", "k_proj"), "value": ("value", "v_proj"),
              "output": ("output.dense", "o_proj")}


def resolve_targets(backbone: nn.Module, targets: list[str]) -> list[str]:
    """Map role names (query, key, value, output) to this backbone's module names."""
    names = [name for name, _ in backbone.named_modules()]
    resolved = []
    for target in targets:
        found = [c for c in ROLE_NAMES.get(target, (target,)) if any(n.endswith(c) for n in names)]
        if not found:
            raise ConfigError(f"adapter.targets: '{target}' matches no module of {type(backbone).__name__}")
        resolved.append(found[0])
    return resolved


@ADAPTERS.register("lora")
def lora(backbone: nn.Module, cfg: AdapterConfig) -> nn.Module:
    """LoRA (peft) of rank `rank` and scale alpha/rank on the `targets` linear layers."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                        target_modules=resolve_targets(backbone, cfg.targets))
    with warnings.catch_warnings():  # peft still calls a transformers 5 deprecated property
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(_freeze(backbone), config)


@ADAPTERS.register("full")
def full(backbone: nn.Module, cfg: AdapterConfig) -> nn.Module:
    """Full fine-tuning: every backbone parameter trains (the foundation stage uses this)."""
    return backbone.requires_grad_(True)


@ADAPTERS.register("frozen")
def frozen(backbone: nn.Module, cfg: AdapterConfig) -> nn.Module:
    """The backbone stays fixed; only the projection head and temperature train."""
    return _freeze(backbone)


def save_adapter(backbone: nn.Module, directory: Path) -> bool:
    """Save a peft adapter in peft's format; False when the backbone carries none."""
    from peft import PeftModel

    if not isinstance(backbone, PeftModel):
        return False
    backbone.save_pretrained(str(directory))
    return True
