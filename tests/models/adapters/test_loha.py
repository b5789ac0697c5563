"""LoHa: Hadamard product of two low-rank factorisations; only its factors train; starts as the identity."""
import torch

from tests.models.adapters._helpers import (
    adapter_config,
    assert_round_trip,
    assert_starts_unadapted,
    backbone,
    build,
    train_steps,
    trainable,
)


def test_only_hadamard_factors_train_and_start_at_zero(tiny_base):
    config = adapter_config(tiny_base, method="loha", rank=2, alpha=4.0, targets=["value", "mlp_in"])
    model = build(config)
    names = trainable(model)
    assert {n.split(".")[-2] for n in names} == {"hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"}
    assert len(names) == 3 * 2 * 2 * 4  # towers × layers × targets × factors
    layer = backbone(model, "text").base_model.model.encoder.layer[0].intermediate.dense
    w1 = layer.hada_w1_a["default"] @ layer.hada_w1_b["default"]
    w2 = layer.hada_w2_a["default"] @ layer.hada_w2_b["default"]
    torch.testing.assert_close(layer.get_delta_weight("default"), (w1 * w2 * 4.0 / 2).reshape(64, 32))
    assert_starts_unadapted(model, config)


def test_loha_trains_and_round_trips(tiny_base, tmp_path):
    config = adapter_config(tiny_base, method="loha", rank=2, layers=[1])
    model = build(config)
    assert all(".layer.1." in n or ".layers.1." in n for n in trainable(model))
    train_steps(model, config, steps=3)
    assert any(torch.count_nonzero(p) for n, p in model.named_parameters() if "hada_w2_a" in n)
    assert_round_trip(model, config, tmp_path)
