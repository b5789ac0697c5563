"""Serial bottleneck adapters: y + up(act(down(y))) after sublayer outputs (houlsby/pfeiffer); identity at start."""
import pytest
import torch
import torch.nn.functional as F

from tests.models.adapters._helpers import (
    MODALITIES,
    adapter_config,
    assert_round_trip,
    assert_starts_unadapted,
    backbone,
    build,
    train_steps,
    trainable,
)
from xmbench.errors import ConfigError
from xmbench.models.adapters._layers import SerialAdapter

AFTER = {"text": {"attention": "encoder.layer.{}.attention.output.dense", "ffn": "encoder.layer.{}.output.dense"},
         "image": {"attention": "layers.{}.attention.o_proj", "ffn": "layers.{}.mlp.fc2"},
         "audio": {"attention": "layers.{}.attention.o_proj", "ffn": "layers.{}.mlp.fc2"}}


def wrapped(model, modality):
    return sorted(n for n, m in backbone(model, modality).named_modules() if isinstance(m, SerialAdapter))


def test_houlsby_follows_attention_and_ffn_pfeiffer_only_the_ffn(tiny_base):
    houlsby = build(adapter_config(tiny_base, method="bottleneck", style="houlsby"))
    pfeiffer = build(adapter_config(tiny_base, method="bottleneck", style="pfeiffer", layers=[1]))
    for m in MODALITIES:
        assert wrapped(houlsby, m) == sorted(AFTER[m][k].format(i) for k in ("attention", "ffn") for i in (0, 1)), m
        assert wrapped(pfeiffer, m) == [AFTER[m]["ffn"].format(1)], m
        assert all(".adapter.down." in n or ".adapter.up." in n for n in trainable(houlsby, m))
        assert len(trainable(pfeiffer, m)) == 4  # down and up, weight and bias


def test_adapter_is_residual_bottleneck_and_the_identity_at_start(tiny_base):
    config = adapter_config(tiny_base, method="bottleneck", reduction=8, activation="tanh")
    model = build(config)
    assert_starts_unadapted(model, config)
    layer = backbone(model, "text").encoder.layer[0].output.dense
    h = torch.randn(2, 3, 64)
    with torch.no_grad():
        assert torch.equal(layer(h), layer.base(h))  # zero-initialised up: exactly the identity
        for p in layer.adapter.parameters():
            p.normal_(0, 0.3)
        y = layer.base(h)
        a = layer.adapter
        assert a.down.out_features == 32 // 8
        torch.testing.assert_close(layer(h), y + F.linear(torch.tanh(F.linear(y, a.down.weight, a.down.bias)),
                                                          a.up.weight, a.up.bias))


def test_bottleneck_adapters_train_and_round_trip_on_all_towers(tiny_base, tmp_path):
    config = adapter_config(tiny_base, method="bottleneck", style="houlsby", reduction=4)
    model = build(config)
    train_steps(model, config, steps=3)
    assert all(torch.count_nonzero(p) for n, p in model.named_parameters() if n.endswith(".adapter.up.weight"))
    assert backbone(model, "image").xmbench_stats() == {"adapters": 4, "bottleneck": 8,
                                                        "adapter_params": 4 * (32 * 8 + 8 + 8 * 32 + 32)}
    assert_round_trip(model, config, tmp_path)


def test_unknown_style_is_a_config_error(tiny_base):
    with pytest.raises(ConfigError, match="houlsby"):
        adapter_config(tiny_base, method="bottleneck", style="serial")
