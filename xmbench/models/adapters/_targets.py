"""Shared by the adapter methods: which modules of a backbone an adapter targets, and in which layers.

Targets are roles or module names. A role names one linear map of every transformer layer,
whatever the architecture calls it (BERT, and ViT/AST in transformers 5):

    query, key, value   attention input projections   attention.self.query   | attention.q_proj
    output              attention output projection   attention.output.dense | attention.o_proj
    mlp_in              first FFN linear (d → 4d)     intermediate.dense     | mlp.fc1
    mlp_out             second FFN linear (4d → d)    output.dense           | mlp.fc2

Roles are matched as paths inside one layer (`encoder.layer.N.` / `layers.N.`), so BERT's
attention output `attention.output.dense` and its FFN output `output.dense` never collide.
Any other target is a module name, matched as peft matches it (the full name, or a suffix
after a dot). `layers` picks the transformer layers: "all", "top:N" (the N nearest the
output), "bottom:N" (the N nearest the input) or a list of layer indices (0 = the first).

This module imports no torch: options call `check_layers` when a suite is parsed.
"""
from __future__ import annotations

import json
import re

from xmbench.errors import ConfigError

# Short names for peft's suffix matching (the reference's adapter config stores them): BERT
# query/value, ViT and AST in transformers 5 q_proj/v_proj. Used only where they select exactly
# the modules the role means (see resolve_targets).
ROLE_NAMES = {"query": ("query", "q_proj"), "key": ("key", "k_proj"), "value": ("value", "v_proj"),
              "output": ("attention.output.dense", "o_proj"), "mlp_in": ("intermediate.dense", "fc1"),
              "mlp_out": ("output.dense", "fc2")}

# Each role's path inside one transformer layer, first match wins: BERT/RoBERTa/CLAP text (and
# transformers 4 ViT, whose query sits at attention.attention.query), ViT/AST/DINOv2 in transformers 5,
# CLIP and Whisper (self_attn, mlp or bare fc1/fc2), wav2vec2 (attention.out_proj, feed_forward).
# A hierarchical encoder (CLAP's HTS-AT audio, Swin) has blocks inside each stage: a layer is then a
# stage, and a role matches in each of its blocks (`layers.S.blocks.B.<path>`).
ROLE_PATHS = {
    "query": ("attention.self.query", "attention.attention.query", "attention.q_proj", "self_attn.q_proj"),
    "key": ("attention.self.key", "attention.attention.key", "attention.k_proj", "self_attn.k_proj"),
    "value": ("attention.self.value", "attention.attention.value", "attention.v_proj", "self_attn.v_proj"),
    "output": ("attention.output.dense", "attention.o_proj", "self_attn.out_proj", "attention.out_proj"),
    "mlp_in": ("intermediate.dense", "mlp.fc1", "fc1", "feed_forward.intermediate_dense"),
    "mlp_out": ("output.dense", "mlp.fc2", "fc2", "feed_forward.output_dense"),
}
LAYER_LISTS = ("layer", "layers", "h", "block", "blocks")  # the names peft's layers_pattern tries
LAYER_SPEC = re.compile(r"^(all|(top|bottom):([1-9][0-9]*))$")

Layers = str | list[int]


def check_layers(layers: Layers) -> None:
    """A ConfigError unless `layers` is "all", "top:N", "bottom:N" or a list of indices >= 0 (no torch needed)."""
    if isinstance(layers, str):
        if not LAYER_SPEC.match(layers):
            raise ConfigError(f"layers: '{layers}' is not \"all\", \"top:N\", \"bottom:N\" or a list of layer indices")
    elif not layers or any(not isinstance(i, int) or isinstance(i, bool) or i < 0 for i in layers):
        raise ConfigError(f"layers: expected a non-empty list of layer indices >= 0, got {layers!r}")


def check_targets(targets: list[str]) -> None:
    if not targets:
        raise ConfigError("targets: name at least one role or module")


def layer_list(backbone) -> tuple[str, int] | None:
    """(name, length) of the backbone's list of transformer layers (BERT: encoder.layer; ViT, AST: layers)."""
    for name, module in backbone.named_modules():
        if name.rsplit(".", 1)[-1] in LAYER_LISTS and type(module).__name__ == "ModuleList":
            return name, len(module)
    return None


def select_layers(layers: Layers, count: int) -> list[int]:
    """The indices `layers` picks out of `count` transformer layers, ascending."""
    check_layers(layers)
    if layers == "all":
        return list(range(count))
    if isinstance(layers, str):
        _, side, n = LAYER_SPEC.match(layers).groups()
        if int(n) > count:
            raise ConfigError(f"layers: '{layers}' asks for {n} layers; the backbone has {count}")
        return list(range(count - int(n), count)) if side == "top" else list(range(int(n)))
    wrong = [i for i in layers if i >= count]
    if wrong:
        raise ConfigError(f"layers: index {wrong[0]} is out of range; the backbone has {count} layers (0…{count - 1})")
    return sorted(set(layers))


def layer_blocks(backbone, layers: Layers = "all") -> list[tuple[int, str]]:
    """(index, full name) of each chosen transformer layer of the backbone."""
    found = layer_list(backbone)
    if found is None:
        raise ConfigError(f"adapter: {type(backbone).__name__} has no list of transformer layers "
                          f"(a module list named {', '.join(LAYER_LISTS)})")
    prefix, count = found
    return [(i, f"{prefix}.{i}") for i in select_layers(layers, count)]


def _matches(name: str, target: str) -> bool:
    """peft's rule for a target in a list: the full module name, or a suffix after a dot."""
    return name == target or name.endswith(f".{target}")


def resolve_modules(backbone, targets: list[str], layers: Layers = "all") -> list[str]:
    """Full names of the modules `targets` (roles or names) select in the chosen `layers`, in model order."""
    check_targets(targets)
    names = [name for name, _ in backbone.named_modules()]
    present = set(names)
    found = layer_list(backbone)
    if found is None and layers != "all":
        layer_blocks(backbone, layers)  # raises: layers cannot be chosen here
    blocks = layer_blocks(backbone, layers) if found is not None else []
    chosen: set[str] = set()
    for target in targets:
        hits = set()
        if target in ROLE_PATHS and found is not None:
            for _, block in blocks:
                hits |= _role_in_block(block, ROLE_PATHS[target], names, present)
        if not hits and target in ROLE_PATHS and found is not None:
            raise ConfigError(unresolved_role(backbone, target, blocks, layers))
        if not hits:  # a module name, or a role of an architecture without known paths (its short names)
            candidates = ROLE_NAMES.get(target, (target,))
            hits = {n for n in names for c in candidates if n and _matches(n, c)}
            if found is not None and layers != "all":
                inside = tuple(f"{block}." for _, block in blocks)
                hits = {n for n in hits if n.startswith(inside)}
        if not hits:
            where = "" if layers == "all" else f" in layers {layers}"
            raise ConfigError(f"adapter.targets: '{target}' matches no module of {type(backbone).__name__}{where}")
        chosen |= hits
    return [n for n in names if n in chosen]


def _role_in_block(block: str, paths: tuple[str, ...], names: list[str], present: set[str]) -> set[str]:
    """The role's module in one layer: its path right under the layer, or (a stage of blocks) in each block."""
    direct = next((p for p in paths if f"{block}.{p}" in present), None)
    if direct is not None:
        return {f"{block}.{direct}"}
    for path in paths:
        nested = re.compile(rf"{re.escape(block)}\.\w+\.\d+\.{re.escape(path)}")
        hits = {n for n in names if nested.fullmatch(n)}
        if hits:
            return hits
    return set()


def unresolved_role(backbone, role: str, blocks: list[tuple[int, str]], layers: Layers) -> str:
    """Why a role names nothing here: the layers and linear modules the backbone has, and how to name them."""
    prefix = blocks[0][1] if blocks else ""
    linears = [n.removeprefix(f"{prefix}.") for n, m in backbone.named_modules()
               if is_linear(m) and n.startswith(f"{prefix}.")]
    return (f"adapter.targets: the role '{role}' resolves to no module of {type(backbone).__name__}"
            f"{'' if layers == 'all' else f' in layers {layers}'}: its layers are {prefix.rsplit('.', 1)[0]}.N "
            f"({len(blocks)} chosen), and the linear modules of {prefix} are: {', '.join(linears) or 'none'}. "
            f"Name the targets explicitly by module name, e.g. targets = {json.dumps(linears[:2])}, "
            f"which are matched in every chosen layer")


def is_linear(module) -> bool:
    """A linear map an adapter can target: nn.Linear, or transformers' Conv1D (GPT-2's c_attn, c_proj, c_fc),
    a linear layer with its weight transposed that peft adapts as well."""
    import torch

    return isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D"


def resolve_targets(backbone, targets: list[str], layers: Layers = "all") -> list[str]:
    """peft's `target_modules` for these roles or names in these layers.

    The short names (query/value for BERT, q_proj/v_proj for ViT and AST) where, matched as peft
    matches them, they select exactly the modules the roles mean; otherwise the full module
    names (BERT's FFN `output.dense`, a subset of layers), which peft matches exactly.
    """
    full = resolve_modules(backbone, targets, layers)
    if layers != "all":
        return full
    names = [name for name, _ in backbone.named_modules()]
    short = []
    for target in targets:
        candidates = [c for c in ROLE_NAMES.get(target, (target,)) if any(_matches(n, c) for n in names)]
        if not candidates:
            return full
        short.append(candidates[0])
    return short if {n for n in names if any(_matches(n, s) for s in short)} == set(full) else full


def freeze(module):
    module.requires_grad_(False)
    return module


def attach(backbone, callbacks=(), stats=None):
    """Give the backbone the training callbacks (`xmbench_callbacks`) and stats (`xmbench_stats`) its adapter needs."""
    if callbacks:
        backbone.xmbench_callbacks = list(callbacks)
    if stats is not None:
        backbone.xmbench_stats = stats
    return backbone


def trainable_count(module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def peft_model(backbone, config):
    """The frozen backbone wrapped by peft with `config` (its adapter weights train)."""
    import warnings

    from peft import get_peft_model

    with warnings.catch_warnings():  # peft still calls a transformers 5 deprecated property
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(freeze(backbone), config)
