"""LoKr: Kronecker product of a small and a low-rank factor; only its factors train; starts as the identity."""
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


def test_only_kronecker_factors_train_and_start_at_zero(tiny_base):
    config = adapter_config(tiny_base, method="lokr", rank=2, targets=["query", "mlp_out"])
    model = build(config)
    names = trainable(model)
    assert names and all(n.split(".")[-2].startswith("lokr_w") for n in names)
    assert {n.split(".base_model.model.")[1].split(".lokr_")[0] for n in trainable(model, "image")} == {
        "layers.0.attention.q_proj", "layers.1.attention.q_proj", "layers.0.mlp.fc2", "layers.1.mlp.fc2"}
    layer = backbone(model, "audio").base_model.model.layers[1].mlp.fc2
    delta = layer.get_delta_weight("default")
    assert delta.shape == (32, 64) and torch.count_nonzero(delta) == 0
    assert_starts_unadapted(model, config)


def test_lokr_trains_and_round_trips(tiny_base, tmp_path):
    config = adapter_config(tiny_base, method="lokr", rank=2, layers="bottom:1")
    model = build(config)
    train_steps(model, config, steps=3)
    layer = backbone(model, "text").base_model.model.encoder.layer[0].attention.self.value
    assert torch.count_nonzero(layer.get_delta_weight("default")) > 0
    assert all(".layer.0." in n or ".layers.0." in n for n in trainable(model))
    assert_round_trip(model, config, tmp_path)
