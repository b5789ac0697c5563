"""One learnable temperature (CLIP's): shared by every pair, learnt in log space, clamped at `min`."""
import dataclasses
import math

import pytest
import torch

from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.errors import ConfigError
from xmbench.models.reference import build_reference
from xmbench.registry import TEMPERATURES
from xmbench.train.engine import train

PAIRS = ["text-image", "text-audio", "image-audio"]


def build(**options):
    return TEMPERATURES.bind(TEMPERATURES.default("learnable", **options))(PAIRS)


def test_one_scale_shared_by_every_pair_sums_their_gradients():
    temperature = build(init=0.05)
    scales = temperature.scales([("text", "image"), ("text", "audio")])
    assert scales["text-image"] is scales["text-audio"] and scales["text-image"].item() == pytest.approx(20.0)
    (2 * scales["text-image"] + 3 * scales["text-audio"]).backward()
    # d(scale)/d(log scale) = scale: each pair's loss adds its gradient to the one parameter
    assert temperature.log_scale.grad.item() == pytest.approx(5 * 20.0)


def test_clamped_at_min_and_left_alone_above_it():
    temperature = build(init=0.07, min=0.05)
    with torch.no_grad():
        temperature.log_scale.fill_(math.log(1 / 0.001))
    temperature.clamp()
    assert 1 / temperature.scales([("text", "image")])["text-image"].item() == pytest.approx(0.05)
    with torch.no_grad():
        temperature.log_scale.fill_(math.log(1 / 0.2))  # a higher temperature is not touched
    temperature.clamp()
    assert 1 / temperature.log_scale.exp().item() == pytest.approx(0.2)


def test_training_that_sharpens_stops_at_min(tiny_base, sharpening_loss):
    config = resolve(tiny_base, {"model.temperature": {"name": "learnable", "init": 0.07, "min": 0.05}})
    split = load_split(config.data, "train")
    torch.manual_seed(0)
    model = build_reference(config, split.modalities)
    assert type(model.temperature).__name__ == "LogitScale" and not model.temperature.per_pair
    assert model.logit_scales([("text", "image")])["text-image"].item() == pytest.approx(1 / 0.07)
    # the first step alone moves log(1/T) by ~lr·scale = 1.5 > log(0.07/0.05) = 0.34
    cfg = dataclasses.replace(sharpening_loss(config.train), steps=3, eval_every=0, lr_scale={"temperature": 1000.0})
    result = train(model, split, cfg, seed=0, pairs=cfg.modality_pairs(), progress=False)
    assert [s.temperature for s in result.steps] == pytest.approx([0.05] * 3)


def test_init_below_min_is_a_config_error():
    with pytest.raises(ConfigError, match=r"model\.temperature: init: 0\.005 is below min 0\.01"):
        resolve({"model": {"temperature": {"name": "learnable", "init": 0.005}}})
    with pytest.raises(ConfigError, match=r"model\.temperature\.min: must be positive"):
        resolve({"model": {"temperature": {"name": "learnable", "min": 0}}})
