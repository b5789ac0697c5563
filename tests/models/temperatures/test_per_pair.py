"""A learnable temperature per pair: each pair's loss moves its own scale only; each is clamped at `min`."""
import dataclasses
import math

import pytest
import torch

from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.models.reference import build_reference
from xmbench.registry import TEMPERATURES
from xmbench.train.engine import make_batch, train
from xmbench.train.step import TrainingStep

PAIRS = [("text", "image"), ("text", "audio"), ("image", "audio")]
NAMES = ["text-image", "text-audio", "image-audio"]


def build(**options):
    return TEMPERATURES.bind(TEMPERATURES.default("per_pair", **options))(NAMES)


def test_each_pair_has_its_own_scale_and_gradient():
    temperature = build(init=0.05)
    scales = temperature.scales(PAIRS)
    assert [s.item() for s in scales.values()] == pytest.approx([20.0] * 3)
    assert len({id(s) for s in scales.values()}) == 3
    (2 * scales["text-image"] + 3 * scales["image-audio"]).backward()
    grads = {p: temperature.log_scales[p].grad for p in NAMES}
    assert grads["text-image"].item() == pytest.approx(2 * 20.0) and grads["image-audio"].item() == pytest.approx(3 * 20.0)
    assert grads["text-audio"] is None  # no loss of that pair: no gradient at all
    torch.optim.SGD(temperature.parameters(), lr=0.01).step()
    assert [temperature.log_scales[p].item() for p in NAMES] == pytest.approx(
        [math.log(20) - 0.4, math.log(20), math.log(20) - 0.6])


def test_each_is_clamped_at_min():
    temperature = build(init=0.07, min=0.05)
    with torch.no_grad():
        temperature.log_scales["text-audio"].fill_(math.log(1 / 0.001))
    temperature.clamp()
    assert [1 / s.item() for s in temperature.scales(PAIRS).values()] == pytest.approx([0.07, 0.05, 0.07])


@pytest.fixture
def setup(tiny_base):
    config = resolve(tiny_base, {"model.temperature": {"name": "per_pair", "init": 0.05}})
    split = load_split(config.data, "train")
    torch.manual_seed(0)
    return config, split, build_reference(config, split.modalities)


def test_in_the_objective_each_pair_loss_reaches_only_its_own_scale(setup):
    config, split, model = setup
    assert sorted(model.temperature.log_scales) == sorted(NAMES)  # the configured pairs
    batch = make_batch(split, torch.arange(8), ["text", "image", "audio"], torch.Generator().manual_seed(0))
    out = TrainingStep(model, config.train, PAIRS)(batch)
    scales = [model.temperature.log_scales[p] for p in NAMES]
    for pair in NAMES:
        grads = torch.autograd.grad(out.parts[pair], scales, retain_graph=True, allow_unused=True)
        assert [g is not None and g.abs().item() > 0 for g in grads] == [p == pair for p in NAMES]


def test_training_one_pair_moves_its_scale_only(setup, sharpening_loss):
    config, split, model = setup
    before = {p: model.temperature.log_scales[p].item() for p in NAMES}
    cfg = dataclasses.replace(sharpening_loss(config.train), steps=2, eval_every=0, pairs=["text-image"])
    result = train(model, split, cfg, seed=0, pairs=[("text", "image")], progress=False)
    after = {p: model.temperature.log_scales[p].item() for p in NAMES}
    assert after["text-image"] > before["text-image"]  # sharpened: a lower temperature
    assert {p: after[p] for p in NAMES[1:]} == {p: before[p] for p in NAMES[1:]}
    assert result.steps[-1].temperature == pytest.approx(1 / math.exp(after["text-image"]))
