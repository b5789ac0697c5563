"""Towers from the user's code (model.<m>.tower.factory): adapters, heads and transforms reach them."""
from __future__ import annotations

import sys

import pytest
import torch

from xmbench.config import resolve
from xmbench.errors import ConfigError

TOWER_MODULE = '''
import torch
from torch import nn
from xmbench.models.code_tower import TowerParts


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.mix = nn.Linear(width, width)

    def forward(self, x):
        return x + torch.tanh(self.mix(x))


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch = nn.Linear(48, 24)
        self.layers = nn.ModuleList([Block(24), Block(24)])

    def forward(self, pixel_values):
        b = pixel_values.shape[0]
        x = self.patch(pixel_values.reshape(b, 3, 8, 4, 8, 4).permute(0, 2, 4, 1, 3, 5).reshape(b, 64, 48))
        for layer in self.layers:
            x = layer(x)
        return x  # (B, T, H) token states


def preprocess(images):
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    return {"pixel_values": torch.nn.functional.interpolate(x, size=(32, 32), mode="area")}


def image_tower(modality):
    torch.manual_seed(0)
    return TowerParts(Encoder(), 24, preprocess)
'''


@pytest.fixture
def tower_module(tmp_path, monkeypatch):
    (tmp_path / "my_towers.py").write_text(TOWER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_towers:image_tower"
    sys.modules.pop("my_towers", None)


def test_a_code_tower_takes_adapters_by_module_name_and_its_own_preprocessing(tower_module, tiny_base):
    from xmbench.bench.stages import load_data
    from xmbench.models.model import build_model

    tiny_base["model"]["image"] = {"tower": {"factory": tower_module},
                                   "adapter": {"method": "lora", "rank": 2, "targets": ["mix"], "layers": "top:1"}}
    config = resolve(tiny_base)
    assert config.data.processors == {"image": f"factory:{tower_module}"}
    data = load_data(config)
    assert data.test.image["pixel_values"].shape[1:] == (3, 32, 32)
    model, facts = build_model(config, data.modalities, seed=0, progress=False)
    trained = sorted(n for n, p in model.towers["image"].named_parameters() if p.requires_grad)
    assert trained == ["backbone.base_model.model.layers.1.mix.lora_A.default.weight",
                       "backbone.base_model.model.layers.1.mix.lora_B.default.weight"]
    assert model.encode("image", data.test.rows("image", torch.arange(3))).shape == (3, 16)
    assert facts["pretrained"] == [f"tower/image (code {tower_module})"]


def test_a_code_tower_with_a_checkpoint_path_is_refused(tiny_base):
    tiny_base["model"]["image"] = {"tower": {"factory": "my_towers:image_tower"}, "path": "/models/x"}
    with pytest.raises(ConfigError, match=r"model.image: tower \(code\) and path \(a checkpoint\) both name the tower"):
        resolve(tiny_base)


def test_the_foundation_is_skipped_for_external_towers_unless_asked(tower_module, tiny_base):
    from xmbench.models.model import uses_foundation

    tiny_base["foundation"]["enabled"] = True
    tiny_base["model"]["image"] = {"tower": {"factory": tower_module}}
    assert not uses_foundation(resolve(tiny_base), ("text", "image", "audio"))
    tiny_base["foundation"]["pretrained_towers"] = True
    assert uses_foundation(resolve(tiny_base), ("text", "image", "audio"))
