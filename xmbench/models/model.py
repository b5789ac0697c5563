"""The cross-modal model protocol, and building the model a config names (reference or user).

What xmbench needs of any model is `modalities` and `encode`. Everything else is an optional
capability, asked for through xmbench.models.capabilities (which supplies the default when a
model lacks it); code outside xmbench/models never reaches into a model's attributes.

Optional capabilities, each a method or attribute the model may define:
- `parameters()`/`named_parameters()`, `to(device)`, `train()`/`eval()` (any `nn.Module` has them):
  without them the model is not trained and stays where it is.
- `logit_scales(pairs) -> {"text-image": scalar tensor, ...}`, or a `logit_scale` tensor shared by
  every pair: the temperature hook (a learnable one is a parameter the model owns). Default: CLIP's
  fixed initial 1/0.07.
- `score(query_modality, queries, gallery_modality, gallery) -> (n_queries, n_gallery)`: for models
  whose similarity is not the dot product of `encode`'s outputs (fusion, re-rankers). Training,
  evaluation and the query path then use it.
- `encode_states(modality, inputs) -> (embeddings, states)`: for models whose `score`/`rerank` read more
  of each row than its embedding (fusion before projection: the towers' outputs). The states are
  encoded with the rows (the gallery's once, like its embeddings) and reach `score(..., states=(query
  states, gallery states))` and `rerank(..., states=(query states, candidate states))`.
- `after_optimizer_step()`: called after each optimizer step (e.g. to clamp the temperature).
- `components() -> {name: nn.Module}` and `component_of(parameter_name) -> name`: how profiling,
  memory breakdowns and parameter groups name the model's parts. Default: a parameter belongs to
  the first part of its name.
- `save_artifacts(directory) -> adapter bytes` and `load_artifacts(directory)`: default, the
  trainable tensors in safetensors.
- `resized(modality, size) -> model`: a model for inputs of another size (shape scaling).
"""
from __future__ import annotations

import importlib
import sys
from typing import Protocol, runtime_checkable

import torch

from xmbench.config import RunConfig
from xmbench.errors import ConfigError
from xmbench.seeding import seed_everything


@runtime_checkable
class CrossModalModel(Protocol):
    """What xmbench needs of any model: encode a modality's batch into embeddings.

    `inputs` are the preprocessed tensors of `xmbench.data.preprocess`: text `input_ids` and
    `attention_mask` (MiniLM tokenizer), image `pixel_values` (B, 3, H, W), audio
    `input_values` (B, frames, n_mels) log-mel. `encode` returns (B, D) embeddings, L2-normalised
    for cosine similarity. A user model plugs in with `model.factory = "package.module:function"`,
    the function taking the RunConfig.
    """

    modalities: tuple[str, ...]

    def encode(self, modality: str, inputs: dict[str, torch.Tensor]) -> torch.Tensor: ...


def build_model(config: RunConfig, modalities: tuple[str, ...], seed: int, progress: bool = True):
    """The model the config names, initialised for `seed`; returns (model, foundation facts)."""
    if config.model.factory != "reference":
        seed_everything(seed)
        return load_user_model(config), {}
    from xmbench.models.reference import build_reference
    from xmbench.train import distributed
    from xmbench.train.foundation import foundation_state

    state, foundation = None, {}
    if uses_foundation(config, modalities):
        ranks = distributed.current()
        if ranks and not ranks.is_main:
            distributed.barrier()  # rank 0 pretrains (or finds) the foundation; the others then read its cache
        state, foundation = foundation_state(config, progress)
        if ranks and ranks.is_main:
            distributed.barrier()
    seed_everything(seed)  # adapter initialisation depends on the run seed only
    model = build_reference(config, modalities, state)
    if model.fresh_parts:  # the variant's own projection or temperature: not in the foundation
        foundation["fresh"] = model.fresh_parts
    if state is None and external_towers(config, modalities):
        foundation.update(starting_point(config, modalities))
        if progress:
            print(f"xmbench: starting point: {describe_start(foundation)}", file=sys.stderr, flush=True)
    if config.model.fusion is not None:
        from xmbench.registry import FUSIONS

        model = FUSIONS.bind(config.model.fusion)(model)
    return model, foundation


def tower_origin(config: RunConfig, modality: str) -> str | None:
    """Where a tower's weights start from when they are not random: a checkpoint or the user's code."""
    tower = getattr(config.model, modality)
    if tower.tower is not None:
        return f"code {tower.tower.factory}"
    if tower.arch == "hf":
        return f"checkpoint {tower.path}"
    if tower.arch == "minilm" and tower.size == "small":
        return "pretrained all-MiniLM-L6-v2"
    return None


def uses_foundation(config: RunConfig, modalities: tuple[str, ...]) -> bool:
    """The foundation stage pretrains the built-in random towers; a model with a tower from a checkpoint or
    from code skips it unless `foundation.pretrained_towers` asks for it."""
    if not config.foundation.enabled:
        return False
    return not external_towers(config, modalities) or config.foundation.pretrained_towers


def external_towers(config: RunConfig, modalities: tuple[str, ...]) -> list[str]:
    """The modalities whose tower comes from a checkpoint folder or from the user's code."""
    return [m for m in modalities if getattr(config.model, m).tower is not None or getattr(config.model, m).arch == "hf"]


def starting_point(config: RunConfig, modalities: tuple[str, ...]) -> dict[str, list[str]]:
    """Which parts of a model built without the foundation start pretrained, and which fresh (random)."""
    pretrained, fresh = [], []
    for m in modalities:
        origin = tower_origin(config, m)
        (pretrained if origin else fresh).append(f"tower/{m}" + (f" ({origin})" if origin else ""))
    from xmbench.models.dual_encoder import keeps_checkpoint_head, keeps_checkpoint_temperature

    source = config.model.pretrained
    for m in modalities:
        kept = keeps_checkpoint_head(config.model, m)
        (pretrained if kept else fresh).append(f"head/{m}" + (f" ({source.kind} {source.path})" if kept else ""))
    (pretrained if keeps_checkpoint_temperature(config.model) else fresh).append("temperature")
    return {"pretrained": pretrained, "fresh": fresh}


def describe_start(facts: dict) -> str:
    return (f"pretrained: {', '.join(facts.get('pretrained', [])) or 'nothing'}; "
            f"fresh: {', '.join(facts.get('fresh', [])) or 'nothing'}")


def load_user_model(config: RunConfig) -> CrossModalModel:
    """Import `package.module:function` and call it with the RunConfig."""
    module_name, _, attr = config.model.factory.partition(":")
    if "" not in sys.path:  # a factory in the working folder imports like one in a package
        sys.path.insert(0, "")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"model.factory: cannot import '{config.model.factory}': {exc}") from None
    model = factory(config)
    if not isinstance(model, CrossModalModel):
        raise ConfigError(f"model.factory: '{config.model.factory}' returned {type(model).__name__}, "
                          "which has no `modalities` and `encode(modality, inputs)`")
    return model


def resolve_device(name: str) -> torch.device:
    """'cpu', 'cuda' or 'auto' (CUDA when present); asking for CUDA without one is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: 'cuda' was asked for but torch.cuda.is_available() is False "
                          "on this machine; use 'cpu' or 'auto'")
    return torch.device(name)


def to_device(inputs: dict[str, torch.Tensor], device: torch.device | str) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in inputs.items()}
