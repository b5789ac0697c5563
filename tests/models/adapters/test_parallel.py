"""Parallel adapters: sublayer(x) + s·up(act(down(x))) beside attention/FFN of BERT, ViT and AST; round trip."""
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
from xmbench.models.adapters._layers import ParallelAdapter

SITES = {"text": {"attention": "encoder.layer.{}.attention.output", "ffn": "encoder.layer.{}.output"},
         "image": {"attention": "layers.{}.attention", "ffn": "layers.{}.mlp"},
         "audio": {"attention": "layers.{}.attention", "ffn": "layers.{}.mlp"}}


def wrapped(model, modality):
    return sorted(n for n, m in backbone(model, modality).named_modules() if isinstance(m, ParallelAdapter))


def randomise(model):
    torch.manual_seed(1)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if ".adapter." in n:
                p.normal_(0, 0.3)


def bottleneck(adapter, x):
    return F.linear(F.relu(F.linear(x, adapter.down.weight, adapter.down.bias)), adapter.up.weight, adapter.up.bias)


@pytest.mark.parametrize("position", ["attention", "ffn", "both"])
def test_adapters_sit_beside_the_chosen_sublayers(tiny_base, position):
    model = build(adapter_config(tiny_base, method="parallel", position=position, layers="top:1"))
    kinds = ["attention", "ffn"] if position == "both" else [position]
    for m in MODALITIES:
        assert wrapped(model, m) == sorted(SITES[m][k].format(1) for k in kinds), m
        names = trainable(model, m)
        assert names and all(".adapter.down." in n or ".adapter.up." in n for n in names)


def test_output_is_sublayer_plus_scaled_bottleneck_of_its_input(tiny_base):
    model = build(adapter_config(tiny_base, method="parallel", position="both", scale=2.0, reduction=4), ("text", "image"))
    randomise(model)
    x, h = torch.randn(2, 5, 32), torch.randn(2, 5, 64)
    with torch.no_grad():
        vit = backbone(model, "image")
        mlp = vit.layers[0].mlp
        assert mlp.adapter.down.out_features == 32 // 4
        torch.testing.assert_close(mlp(x), mlp.base(x) + 2.0 * bottleneck(mlp.adapter, x))
        attention = vit.layers[1].attention
        torch.testing.assert_close(attention(x)[0], attention.base(x)[0] + 2.0 * bottleneck(attention.adapter, x))
        # BERT (post-LN): added where the sublayer joins the residual, before the LayerNorm
        ffn = backbone(model, "text").encoder.layer[1].output
        expected = ffn.base.LayerNorm(ffn.base.dense(h) + x + 2.0 * bottleneck(ffn.adapter, x))
        torch.testing.assert_close(ffn(h, x), expected)
        torch.testing.assert_close(ffn(h, input_tensor=x), expected)
        out = backbone(model, "text").encoder.layer[0].attention.output
        expected = out.base.LayerNorm(out.base.dense(x) + x + 2.0 * bottleneck(out.adapter, x))
        torch.testing.assert_close(out(x, x), expected)


def test_zero_initialised_up_projection_starts_from_the_unadapted_model(tiny_base):
    config = adapter_config(tiny_base, method="parallel", position="both", scale=4.0)
    model = build(config)
    assert all(torch.count_nonzero(p) == 0 for n, p in model.named_parameters() if ".adapter.up." in n)
    assert_starts_unadapted(model, config)


def test_parallel_adapters_train_and_round_trip_on_all_towers(tiny_base, tmp_path):
    config = adapter_config(tiny_base, method="parallel", position="both", learn_scale=True, activation="gelu")
    model = build(config)
    assert len([n for n in trainable(model) if n.endswith(".scale")]) == 3 * 2 * 2
    train_steps(model, config, steps=3)
    stats = backbone(model, "audio").xmbench_stats()
    assert stats["adapters"] == 4 and stats["bottleneck"] == 2 and stats["adapter_params"] == 4 * (32 * 2 + 2 + 2 * 32 + 32)
    assert any(s != 1.0 for s in stats["scales"].values())
    rebuilt = assert_round_trip(model, config, tmp_path)
    assert not any(p.requires_grad for n, p in rebuilt.named_parameters() if ".base." in n)


def test_reduction_is_bounded(tiny_base):
    for bad in (1, 65):
        with pytest.raises(ConfigError, match="reduction"):
            adapter_config(tiny_base, method="parallel", reduction=bad)
