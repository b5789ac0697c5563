"""The reference model: three towers with adapters, projection heads, a learnable temperature.

It offers every optional capability of the model protocol (xmbench.models.model): per-pair
logit scales, the temperature clamp after each optimizer step, its components for profiling
and parameter groups, its artifacts, and twins for other input sizes.
"""
from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import record_function

from xmbench.config import RunConfig
from xmbench.registry import ADAPTERS, HEADS, PRECISIONS, TEMPERATURES, TOWERS, TRANSFORMS


class Tower(nn.Module):
    """Backbone → token states → one vector per row: `pooling` (xmbench.models.pooling), by default the
    mean over the real (unpadded) tokens."""

    def __init__(self, modality: str, backbone: nn.Module, hidden_size: int, pooling: str = "mean"):
        super().__init__()
        self.modality = modality
        self.backbone = backbone
        self.hidden_size = hidden_size
        self.pooling = pooling
        self.feature_cache = None  # a FeatureCache while frozen_feature_cache is on (not a module: no state)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.feature_cache is not None and self.feature_cache.applies():
            return self.feature_cache.features(inputs, self.compute)
        return self.compute(inputs)

    def compute(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        from xmbench.models.pooling import pool

        return pool(self.pooling, self.backbone(**inputs), inputs.get("attention_mask"), self.backbone)


class PrecomputedTower(nn.Module):
    """A frozen tower stood in for by its outputs, looked up by row: a tower that does not
    train need not run every step (the foundation stage caches the frozen text tower so)."""

    def __init__(self, modality: str, features: torch.Tensor):
        super().__init__()
        self.modality = modality
        self.register_buffer("features", features, persistent=False)
        self.hidden_size = features.shape[1]

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.features[inputs["row"]]


class ReferenceModel(nn.Module):
    """Towers with adapters, projection heads, and a temperature (a registered technique)."""

    def __init__(self, towers: dict[str, nn.Module], heads: dict[str, nn.Module], temperature: nn.Module,
                 precision=None, config: RunConfig | None = None):
        super().__init__()
        self.temperature = temperature  # registered first: its parameters lead the model's order
        self.towers = nn.ModuleDict(towers)
        self.heads = nn.ModuleDict(heads)
        self.modalities = tuple(towers)
        self.precision = precision or PRECISIONS.bind(PRECISIONS.default("fp32"))()
        self.config = config  # what built it: twins for other input sizes are built from it

    def encode(self, modality: str, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.encode_with_features(modality, inputs)[0]

    def encode_with_features(self, modality: str, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(the L2-normalised embeddings, the tower's pooled output before the projection head), the tower run once.
        Not the `encode_states` capability: the bi-encoder's scores do not read the features (fusion before projection does)."""
        # profiler scopes: the trace and its per-tower split read these names
        device_type = next(iter(inputs.values())).device.type
        with record_function(f"tower/{modality}"), self.precision.context(f"tower/{modality}", device_type):
            features = self.towers[modality](inputs)
        with record_function(f"projection/{modality}"), self.precision.context(f"head/{modality}", device_type):
            return F.normalize(self.heads[modality](features).float(), dim=-1), features

    # -- capabilities ------------------------------------------------------------------------
    def logit_scales(self, pairs: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
        return self.temperature.scales(pairs)

    def after_optimizer_step(self) -> None:
        self.temperature.clamp()

    def grad_scaler(self, device_type: str):
        """The precision policy's gradient scaler (fp16), or None."""
        return self.precision.grad_scaler(device_type)

    def components(self) -> dict[str, nn.Module]:
        """tower/<modality> and head/<modality>: profiler scopes, memory breakdown, parameter groups."""
        return {**{f"tower/{m}": t for m, t in self.towers.items()}, **{f"head/{m}": h for m, h in self.heads.items()}}

    def training_callbacks(self) -> list:
        """Callbacks the adapters need during training (e.g. AdaLoRA's rank allocation): each tower's
        backbone may list them in an `xmbench_callbacks` attribute."""
        return [c for t in self.towers.values() for c in getattr(t.backbone, "xmbench_callbacks", [])]

    def adapter_stats(self) -> dict:
        """What each tower's adapter reports of itself (e.g. effective ranks): `xmbench_stats()` of a backbone."""
        return {m: t.backbone.xmbench_stats() for m, t in self.towers.items() if hasattr(t.backbone, "xmbench_stats")}

    def projection_weights(self) -> dict[str, torch.Tensor]:
        """The weight of each head's last linear map into the shared space (orthogonality regularisers)."""
        return {m: [layer for layer in head.modules() if isinstance(layer, nn.Linear)][-1].weight
                for m, head in self.heads.items()}

    def component_of(self, parameter_name: str) -> str:
        parts = parameter_name.split(".")
        if parts[0] in ("towers", "heads") and len(parts) > 1:
            return f"{parts[0][:-1]}/{parts[1]}"
        return parts[0]  # temperature

    def save_artifacts(self, directory: Path) -> int:
        from xmbench.models.artifacts import save_reference

        return save_reference(self, directory)

    def load_artifacts(self, directory: Path) -> None:
        from xmbench.models.artifacts import load_reference

        load_reference(self, directory)

    def resized(self, modality: str, size: float) -> ReferenceModel:
        """A twin of the same architecture, adapter and head built for another input size.

        A ViT's or AST's position embeddings fix its input size; latency does not depend on
        the weights' values, so shape scaling measures these twins.
        """
        if modality == "text" or self.config is None:
            return self
        data = dataclasses.replace(self.config.data, **({"image_size": int(size)} if modality == "image" else
                                                        {"audio_seconds": float(size)}))
        twin = build_reference(dataclasses.replace(self.config, data=data), (modality,)).eval()
        for choice in self.config.transforms:  # merged or quantised as the measured model is
            twin = TRANSFORMS.bind(choice)(twin)
        return twin

    @contextmanager
    def frozen_feature_cache(self, folder: Path, max_mb: float):
        """Each tower with nothing to train reads its features from a FeatureCache while inside
        (xmbench.models.feature_cache); yields {modality: cache}, saved to `folder` on leaving."""
        from xmbench.models.feature_cache import FeatureCache

        caches = {m: FeatureCache(t, Path(folder) / m, max_mb) for m, t in self.towers.items()
                  if isinstance(t, Tower) and not any(p.requires_grad for p in t.parameters())}
        for m, cache in caches.items():
            self.towers[m].feature_cache = cache
        try:
            yield caches
        finally:
            for m in caches:
                self.towers[m].feature_cache = None
        for cache in caches.values():  # only after a run that ended well: an error is not masked by a save
            cache.save()

    @contextmanager
    def precomputed(self, modality: str, split, batch_size: int = 256):
        """The frozen tower of `modality` stood in for by its outputs on every row of `split`
        (inputs are then row numbers: `split.as_row_indices(modality)`), restored afterwards."""
        tower = self.towers[modality]
        device = next(tower.parameters()).device
        with torch.no_grad():  # not inference_mode: the features later feed layers that train
            tower.eval()
            rows = torch.arange(split.n_rows(modality))
            features = torch.cat([tower({k: v.to(device) for k, v in split.rows(modality, rows[i:i + batch_size]).items()})
                                  for i in range(0, len(rows), batch_size)])
        self.towers[modality] = PrecomputedTower(modality, features)
        try:
            yield self
        finally:
            self.towers[modality] = tower


def load_foundation(model: ReferenceModel, state: dict[str, torch.Tensor], projection: bool = True) -> list[str]:
    """The pretrained weights into the model; returns the parts that start fresh instead.

    Every tower weight must be there (the foundation covers all three modalities; a dataset may
    have fewer). Heads and temperature load when the variant's match the foundation's (the
    reference projection) and `projection` is true; otherwise they keep their fresh initialisation.
    """
    own = model.state_dict()
    missing = [k for k in own if k.startswith("towers.") and k not in state]
    if missing:
        raise ValueError(f"foundation checkpoint lacks {len(missing)} tower weights, e.g. {missing[0]}")
    loadable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape
                and (projection or k.startswith("towers."))}
    model.load_state_dict(loadable, strict=False)
    return sorted({".".join(k.split(".")[:2]) for k in own if k not in loadable})


def build_tower(config: RunConfig, modality: str) -> nn.Module:
    """The modality's tower: from the user's code (model.<m>.tower), or the registered arch's builder."""
    tower_cfg = getattr(config.model, modality)
    if tower_cfg.tower is not None:
        from xmbench.models.code_tower import code_tower

        return code_tower(tower_cfg.tower.factory, modality, config)
    return TOWERS.get(tower_cfg.arch)(tower_cfg, config.data, modality)


def _from_checkpoint(model_cfg, heads: dict[str, nn.Module]):
    """A dual encoder's own projection heads and temperature where the suite keeps the default technique."""
    from xmbench.models import dual_encoder

    pretrained = model_cfg.pretrained
    heads = {m: dual_encoder.checkpoint_head(pretrained.path, pretrained.kind, m)
             if dual_encoder.keeps_checkpoint_head(model_cfg, m) else head for m, head in heads.items()}
    choice = model_cfg.temperature
    if dual_encoder.keeps_checkpoint_temperature(model_cfg):
        init = dual_encoder.checkpoint_temperature(pretrained.path, pretrained.kind)
        choice = dataclasses.replace(choice, options=dataclasses.replace(choice.options, init=max(init, choice.options.min)))
    return heads, choice


def build_reference(config: RunConfig, modalities: tuple[str, ...],
                    foundation_state: dict[str, torch.Tensor] | None = None,
                    adapters: dict[str, str] | None = None) -> ReferenceModel:
    """Towers and heads, foundation weights loaded, then each tower's adapter applied.

    `adapters` overrides the adapter method per modality with its defaults (the foundation stage
    passes full/frozen); otherwise each tower's configured adapter is used.
    """
    model_cfg = config.model
    towers = {m: build_tower(config, m) for m in modalities}
    heads = {m: HEADS.bind(getattr(model_cfg, m).head or model_cfg.head)(towers[m].hidden_size, model_cfg.embed_dim)
             for m in modalities}
    temperature_choice = model_cfg.temperature
    if model_cfg.pretrained is not None:
        heads, temperature_choice = _from_checkpoint(model_cfg, heads)
    temperature = TEMPERATURES.bind(temperature_choice)(list(config.train.pairs))
    model = ReferenceModel(towers, heads, temperature, PRECISIONS.bind(config.train.precision)(), config)
    model.fresh_parts = (load_foundation(model, foundation_state, model_cfg.pretrained_projection)
                         if foundation_state is not None else [])
    for m in modalities:
        adapter = getattr(model_cfg, m).adapter
        if adapters and m in adapters:
            adapter = ADAPTERS.default(adapters[m])
        model.towers[m].backbone = ADAPTERS.bind(adapter)(model.towers[m].backbone)
    return model
