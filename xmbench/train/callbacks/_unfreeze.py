"""What the unfreezing callbacks share: the transformer layers of a model's towers, counted from the top.

A tower is a component `tower/<modality>` of the model (`capabilities.component_of`). A parameter
belongs to layer N of its tower when its name holds `.layer.N.` (BERT) or `.layers.N.` (ViT/AST)
— the regex of xmbench.train.optim — wherever it sits in the name: under peft's
`base_model.model.` prefix, as LoRA's frozen `.base_layer.` weight or as the adapter's own
weights. A tower's depth is its highest layer index plus one, counted over all its parameters,
frozen or not. Parameters of a tower outside every layer are either below the first layer or
above the last one (ViT's and AST's final `layernorm`, CLIP's `post_layernorm`, Whisper's
`layer_norm`): the "top norm", unfrozen with the top layers when the callback's `final_norm`
option says so. Below are a tower's parameters that come before its first layer's in the model's
order (embeddings, wav2vec2's convolutional feature encoder and projection, Whisper's convolutions
and positions, CLIP's `pre_layrnorm`, a Swin patch embedding) and any name holding `embeddings`
or `batch_norm` (the input BatchNorm of CLAP's HTS-AT, which its encoder holds after its stages).
A norm registered before the layers but applied after them (wav2vec2's stable-layer-norm variant)
therefore counts as below: it stays frozen.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from xmbench.errors import ConfigError

LAYER = re.compile(r"\.layers?\.(\d+)\.")  # the same pattern as xmbench.train.optim.LAYER
BELOW = re.compile(r"(^|\.)(embeddings?|batch_norm)\.")


def tower_layers(model, towers: list[str]) -> dict[str, int]:
    """{modality: depth} of the chosen towers (all the model's towers when `towers` is empty).

    A chosen tower without layers, or a model without towers, is an error naming what there is.
    """
    from xmbench.models import capabilities

    depths: dict[str, int] = {}
    components = set()
    for name, _ in capabilities.named_parameters(model):
        component = capabilities.component_of(model, name)
        components.add(component)
        match = LAYER.search(name)
        if component.startswith("tower/") and match:
            modality = component.split("/", 1)[1]
            depths[modality] = max(depths.get(modality, 0), int(match.group(1)) + 1)
    chosen = list(towers) or sorted(depths)
    missing = [m for m in chosen if m not in depths]
    if missing or not chosen:
        raise ConfigError(f"unfreezing: no transformer layers (.layer.N. or .layers.N.) in "
                          f"{', '.join(f'tower/{m}' for m in missing) or 'any tower'} of this model; "
                          f"components: {', '.join(sorted(components)) or 'none'}")
    return {m: depths[m] for m in chosen}


def top_layers(model, depths: dict[str, int], count: int, final_norm: bool) -> Callable[[str], bool]:
    """Predicate on parameter names: in one of the top `count` layers of a tower of `depths` (or its top norm)."""
    from xmbench.models import capabilities

    below = below_layers(model)

    def chosen(name: str) -> bool:
        component = capabilities.component_of(model, name)
        if not component.startswith("tower/") or component.split("/", 1)[1] not in depths:
            return False
        depth = depths[component.split("/", 1)[1]]
        match = LAYER.search(name)
        if match:
            return int(match.group(1)) >= depth - count
        return final_norm and count > 0 and name not in below and not BELOW.search(name)

    return chosen


def below_layers(model) -> set[str]:
    """Names of the towers' parameters outside every layer that come before their tower's first layer
    parameter in the model's order: the input side (embeddings, a convolutional feature encoder)."""
    from xmbench.models import capabilities

    below, started = set(), set()
    for name, _ in capabilities.named_parameters(model):
        component = capabilities.component_of(model, name)
        if not component.startswith("tower/"):
            continue
        if LAYER.search(name):
            started.add(component)
        elif component not in started:
            below.add(name)
    return below
