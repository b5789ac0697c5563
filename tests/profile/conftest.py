"""A tiny reference model and its splits, shared by the profile tests."""
from __future__ import annotations

import pytest


@pytest.fixture
def tiny_setup(tiny_config):
    import torch

    from xmbench.data.sources import load_split
    from xmbench.models.reference import build_reference
    from xmbench.registry import load_builtins

    load_builtins()
    train_split = load_split(tiny_config.data, "train")
    test_split = load_split(tiny_config.data, "test")
    torch.manual_seed(0)
    model = build_reference(tiny_config, train_split.modalities)
    pairs = [tuple(p.split("-")) for p in tiny_config.train.pairs]
    return tiny_config, model, train_split, test_split, pairs
