"""The LayerNorm-then-linear head: features normalised per row before the projection."""
import math

import pytest
import torch
from torch import nn

from xmbench.config import resolve
from xmbench.models.reference import build_reference
from xmbench.registry import HEADS


def build(in_dim=4, embed_dim=2, **options):
    return HEADS.bind(HEADS.default("layernorm_linear", **options))(in_dim, embed_dim)


def test_layernorm_comes_before_the_projection():
    head = build()
    assert [type(m) for m in head] == [nn.LayerNorm, nn.Linear]
    with torch.no_grad():
        head[1].weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 2.0]]))
        head[1].bias.copy_(torch.tensor([0.0, 1.0]))
    # x = [1, 2, 3, 4]: mean 2.5, variance 1.25 (biased, as LayerNorm) → (x - 2.5) / sqrt(1.25 + 1e-5)
    root = math.sqrt(1.25 + 1e-5)
    out = head(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    assert out.tolist()[0] == pytest.approx([-1.5 / root, 2 * 1.5 / root + 1.0], rel=1e-6)
    # the projection sees normalised features: scale and shift of the input change nothing
    assert torch.allclose(head(torch.tensor([[13.0, 23.0, 33.0, 43.0]])), out, atol=1e-5)


def test_options_reach_the_layernorm():
    head = build(eps=0.25, affine=False)
    assert head[0].eps == 0.25 and head[0].weight is None
    assert list(head.state_dict()) == ["1.weight", "1.bias"]
    assert list(build().state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_the_reference_model_regularises_its_projection(tiny_base):
    config = resolve(tiny_base, {"model.head": {"name": "layernorm_linear"}})
    model = build_reference(config, ("text", "image"))
    weights = model.projection_weights()
    assert all(weights[m] is model.heads[m][1].weight for m in ("text", "image"))
    assert tuple(weights["text"].shape) == (16, model.towers["text"].hidden_size)
