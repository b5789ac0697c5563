"""A fixed temperature: a scale of 1 / value for every pair that no gradient or step changes."""
import dataclasses

import pytest
import torch

from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.errors import ConfigError
from xmbench.models import capabilities
from xmbench.models.reference import build_reference
from xmbench.registry import TEMPERATURES
from xmbench.train.engine import train

PAIRS = [("text", "image"), ("text", "audio"), ("image", "audio")]


def test_the_scale_is_fixed_and_takes_no_gradient():
    temperature = TEMPERATURES.bind(TEMPERATURES.default("fixed", value=0.1))(["text-image", "text-audio", "image-audio"])
    scales = temperature.scales(PAIRS)
    assert [s.item() for s in scales.values()] == pytest.approx([10.0] * 3)
    assert not any(p.requires_grad for p in temperature.parameters())
    assert not scales["text-image"].requires_grad  # a loss over it has nothing to differentiate
    temperature.clamp()
    assert temperature.scales(PAIRS)["text-image"].item() == pytest.approx(10.0)


def test_training_never_changes_it(tiny_base):
    config = resolve(tiny_base, {"model.temperature": {"name": "fixed", "value": 0.1}})
    split = load_split(config.data, "train")
    torch.manual_seed(0)
    model = build_reference(config, split.modalities)
    assert not any("temperature" in n for n, p in capabilities.named_parameters(model) if p.requires_grad)
    # InfoNCE trains heads and adapters; even a thousandfold learning rate leaves the temperature as it is
    cfg = dataclasses.replace(config.train, steps=3, eval_every=0, lr_scale={"temperature": 1000.0})
    result = train(model, split, cfg, seed=0, pairs=PAIRS, progress=False)
    assert result.steps[-1].loss != result.steps[0].loss
    assert [s.temperature for s in result.steps] == pytest.approx([0.1] * 3, rel=1e-6)
    assert model.logit_scales(PAIRS)["image-audio"].item() == pytest.approx(10.0, rel=1e-6)


def test_value_must_be_positive():
    with pytest.raises(ConfigError, match=r"model\.temperature\.value: must be positive"):
        resolve({"model": {"temperature": {"name": "fixed", "value": 0}}})
