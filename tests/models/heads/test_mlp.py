"""The MLP head: Linear, activation, optional dropout, Linear; parameter names do not depend on the options."""
import pytest
import torch
from torch import nn

from xmbench.config import resolve
from xmbench.errors import ConfigError
from xmbench.registry import HEADS


def build(in_dim=2, embed_dim=2, **options):
    return HEADS.bind(HEADS.default("mlp", **options))(in_dim, embed_dim)


def test_default_is_linear_gelu_linear_at_the_input_width():
    head = build(32, 16)
    assert [type(m) for m in head] == [nn.Linear, nn.GELU, nn.Linear]
    assert tuple(head[0].weight.shape) == (32, 32) and tuple(head[2].weight.shape) == (16, 32)
    assert tuple(build(32, 16, hidden=8)[0].weight.shape) == (8, 32)


@pytest.mark.parametrize("name, kind", [("gelu", nn.GELU), ("relu", nn.ReLU), ("silu", nn.SiLU), ("tanh", nn.Tanh)])
def test_activation_is_chosen_by_name(name, kind):
    assert type(build(activation=name)[1]) is kind


def test_output_matches_a_hand_computation():
    head = build(2, 2, hidden=3, activation="relu")
    with torch.no_grad():
        head[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]]))
        head[0].bias.copy_(torch.tensor([0.0, 0.0, -0.5]))
        head[2].weight.copy_(torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, -1.0]]))
        head[2].bias.copy_(torch.tensor([0.5, 0.0]))
    # hidden: relu([2, 3, 2 - 3 - 0.5]) = [2, 3, 0]; out: [2 + 3 + 0 + 0.5, 3 - 0]
    assert head(torch.tensor([[2.0, 3.0]])).tolist() == [[5.5, 3.0]]


def test_dropout_acts_on_the_hidden_units_in_training_only_and_keeps_parameter_names():
    torch.manual_seed(0)
    plain, dropping = build(4, 3, hidden=64), build(4, 3, hidden=64, dropout=0.5)
    dropping.load_state_dict(plain.state_dict())  # the same names: weights of the plain head load
    assert list(dropping.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    x = torch.randn(5, 4)
    dropping.eval()
    assert torch.equal(dropping(x), plain(x))
    dropping.train()
    hidden = dropping[1](dropping[0](x))
    gelu = nn.functional.gelu(dropping[0](x))
    zeroed = hidden == 0
    assert 0.2 < zeroed.float().mean() < 0.8  # about half of the hidden units dropped
    assert torch.allclose(hidden[~zeroed], 2 * gelu[~zeroed])  # survivors scaled by 1 / (1 - p)


def test_options_are_checked_from_the_config():
    assert resolve({"model": {"head": {"name": "mlp", "hidden": 8, "activation": "silu", "dropout": 0.1}}}) \
        .model.head.options == HEADS.entry("mlp").options(hidden=8, activation="silu", dropout=0.1)
    with pytest.raises(ConfigError, match=r"model\.head\.activation: 'rleu' is not one of .*did you mean 'relu'"):
        resolve({"model": {"head": {"name": "mlp", "activation": "rleu"}}})
    with pytest.raises(ConfigError, match=r"model\.head\.dropout: must be in \[0, 1\)"):
        resolve({"model": {"head": {"name": "mlp", "dropout": 1.0}}})
    with pytest.raises(ConfigError, match=r"model\.head\.hidden: must be positive"):
        resolve({"model": {"head": {"name": "mlp", "hidden": 0}}})
