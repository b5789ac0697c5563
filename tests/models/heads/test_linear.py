"""The linear head: one nn.Linear into the shared space, the default of every tower."""
from torch import nn

from xmbench.registry import HEADS


def test_linear_is_one_linear_map_and_the_default_head():
    head = HEADS.bind(HEADS.default("linear"))(32, 16)
    assert type(head) is nn.Linear and tuple(head.weight.shape) == (16, 32)
    from xmbench.config import ModelConfig

    assert ModelConfig().head.name == "linear"
