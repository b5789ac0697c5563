"""Shared by the adapter methods: which modules of a backbone an adapter targets."""
from __future__ import annotations

from xmbench.errors import ConfigError

# Attention projections are named differently across transformers models and versions
# (BERT: query/value; ViT and AST in transformers 5: q_proj/v_proj): suites use the roles.
ROLE_NAMES = {"query": ("query", "q_proj"), "key": ("key", "k_proj"), "value": ("value", "v_proj"),
              "output": ("output.dense", "o_proj")}


def resolve_targets(backbone, targets: list[str]) -> list[str]:
    """Map role names (query, key, value, output) to this backbone's module names."""
    names = [name for name, _ in backbone.named_modules()]
    resolved = []
    for target in targets:
        found = [c for c in ROLE_NAMES.get(target, (target,)) if any(n.endswith(c) for n in names)]
        if not found:
            raise ConfigError(f"adapter.targets: '{target}' matches no module of {type(backbone).__name__}")
        resolved.append(found[0])
    return resolved


def freeze(module):
    module.requires_grad_(False)
    return module
