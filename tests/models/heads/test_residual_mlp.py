"""The residual-MLP head: pre-LayerNorm residual blocks at the tower's width, then the linear projection."""
import math

import pytest
import torch
from torch import nn

from xmbench.config import resolve
from xmbench.errors import ConfigError
from xmbench.models.reference import build_reference
from xmbench.registry import HEADS


def build(in_dim=2, embed_dim=2, **options):
    return HEADS.bind(HEADS.default("residual_mlp", **options))(in_dim, embed_dim)


def gelu(x: float) -> float:
    return 0.5 * x * (1 + math.erf(x / math.sqrt(2)))


def test_one_block_and_the_projection_by_hand():
    head = build(blocks=1)
    (block,) = head.blocks
    with torch.no_grad():
        block.up.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        block.up.bias.zero_()
        block.down.weight.copy_(torch.tensor([[1.0, 1.0], [0.0, 1.0]]))
        block.down.bias.copy_(torch.tensor([0.5, 0.0]))
        head.projection.weight.copy_(torch.tensor([[2.0, 0.0], [1.0, 1.0]]))
        head.projection.bias.copy_(torch.tensor([0.0, -1.0]))
    # x = [1, 3]: LayerNorm → [-s, s], s = 1 / sqrt(1 + 1e-5) (mean 2, variance 1); up → [-s, 2s]
    s = 1 / math.sqrt(1 + 1e-5)
    g1, g2 = gelu(-s), gelu(2 * s)
    r = [1 + g1 + g2 + 0.5, 3 + g2]  # the input plus down(GELU(up(norm(x))))
    expected = [2 * r[0], r[0] + r[1] - 1.0]
    assert head(torch.tensor([[1.0, 3.0]])).tolist()[0] == pytest.approx(expected, rel=1e-6)


def test_blocks_hidden_width_and_dropout():
    head = build(6, 4, blocks=3, hidden=10, dropout=0.5)
    assert len(head.blocks) == 3
    block = head.blocks[0]
    assert [type(m) for m in (block.norm, block.up, block.down)] == [nn.LayerNorm, nn.Linear, nn.Linear]
    assert tuple(block.up.weight.shape) == (10, 6) and tuple(block.down.weight.shape) == (6, 10)
    assert tuple(head.projection.weight.shape) == (4, 6)
    assert tuple(build(6, 4).blocks[0].up.weight.shape) == (6, 6) and len(build(6, 4).blocks) == 2  # defaults
    x = torch.randn(3, 6)
    head.eval()
    assert torch.equal(head(x), head(x))
    head.train()
    torch.manual_seed(0)
    assert not torch.equal(head(x), head(x))  # dropout acts while training


def test_a_tower_of_the_reference_model_takes_it_and_regularises_the_projection(tiny_base):
    config = resolve(tiny_base, {"model.image.head": {"name": "residual_mlp", "blocks": 2, "hidden": 8}})
    model = build_reference(config, ("text", "image"))
    assert type(model.heads["text"]) is nn.Linear  # model.head: linear
    image = model.heads["image"]
    assert len(image.blocks) == 2 and image.blocks[0].up.out_features == 8
    assert model.projection_weights()["image"] is image.projection.weight  # the last Linear, not a block's
    with pytest.raises(ConfigError, match=r"model\.head\.blocks: must be positive"):
        resolve(tiny_base, {"model.head": {"name": "residual_mlp", "blocks": 0}})
