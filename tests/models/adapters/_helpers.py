"""Shared by the adapter tests: tiny models with an adapter, a few real training steps, the artifacts round trip."""
from __future__ import annotations

import dataclasses

import torch

from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.models import capabilities
from xmbench.models.artifacts import load_artifacts, save_artifacts
from xmbench.models.reference import build_reference
from xmbench.train.engine import train

MODALITIES = ("text", "image", "audio")


def adapter_config(tiny_base, **adapter):
    """The tiny config with every tower's adapter set to `adapter` (a method and its options)."""
    return resolve(tiny_base, {"model.*.adapter": adapter})


def build(config, modalities=MODALITIES, seed: int = 0, **kwargs):
    torch.manual_seed(seed)
    return build_reference(config, modalities, **kwargs)


def frozen_twin(config, modalities=MODALITIES, seed: int = 0):
    """The same towers (same seed) without adapters: what an adapter that starts at zero must reproduce."""
    return build(config, modalities, seed, adapters=dict.fromkeys(modalities, "frozen"))


def backbone(model, modality: str):
    return model.towers[modality].backbone


def inputs(config, modality: str, n: int = 4) -> dict[str, torch.Tensor]:
    return load_split(config.data, "test").rows(modality, torch.arange(n))


def embeddings(model, config, modalities=MODALITIES, n: int = 8) -> dict[str, torch.Tensor]:
    model.eval()
    with torch.no_grad():
        return {m: model.encode(m, inputs(config, m, n)) for m in modalities}


def tower_states(model, config, modality: str, n: int = 4) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return backbone(model, modality)(**inputs(config, modality, n)).last_hidden_state


def train_steps(model, config, modalities=MODALITIES, steps: int | None = None):
    """Real training steps (the engine), with the callbacks the model's adapters ask for."""
    cfg = config.train if steps is None else dataclasses.replace(config.train, steps=steps)
    return train(model, load_split(config.data, "train"), cfg, seed=0, pairs=cfg.modality_pairs(list(modalities)),
                 progress=False, callbacks=capabilities.training_callbacks(model))


def trainable(model, modality: str | None = None) -> list[str]:
    prefix = f"towers.{modality}." if modality else "towers."
    return [n for n, p in model.named_parameters() if p.requires_grad and n.startswith(prefix)]


def assert_round_trip(model, config, folder, modalities=MODALITIES):
    """save_artifacts → load_artifacts gives a model with identical embeddings; returns the rebuilt model."""
    expected = embeddings(model, config, modalities)
    save_artifacts(model, folder, config, modalities, seed=0)
    rebuilt = load_artifacts(folder)
    got = embeddings(rebuilt, config, modalities)
    for m in modalities:
        assert torch.equal(got[m], expected[m]), m
    return rebuilt


def assert_starts_unadapted(model, config, modalities=MODALITIES):
    """Each tower computes what the same towers without adapters compute (an adapter initialised at zero)."""
    twin = frozen_twin(config, modalities)
    for m in modalities:
        torch.testing.assert_close(tower_states(model, config, m), tower_states(twin, config, m), rtol=0, atol=1e-6)
