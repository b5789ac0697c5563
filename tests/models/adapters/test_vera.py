"""VeRA: shared frozen random projections, trained per-layer vectors only; starts as the identity."""
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


def test_only_scaling_vectors_train_around_shared_projections(tiny_base):
    config = adapter_config(tiny_base, method="vera", rank=16, targets=["query", "mlp_in"])
    model = build(config)
    names = trainable(model)
    assert {n.split(".")[-2] for n in names} == {"vera_lambda_b", "vera_lambda_d"}
    assert len(names) == 3 * 2 * 2 * 2  # towers × layers × targets × (b, d)
    vit = backbone(model, "image").base_model.model
    q, fc1 = vit.layers[0].attention.q_proj, vit.layers[1].mlp.fc1
    assert q.vera_A["default"] is fc1.vera_A["default"]  # one projection pair for all layers
    assert not q.vera_A["default"].requires_grad
    assert q.vera_lambda_d["default"].shape == (16,) and torch.all(q.vera_lambda_d["default"] == 0.1)
    assert fc1.vera_lambda_b["default"].shape == (64,) and torch.all(fc1.vera_lambda_b["default"] == 0)
    assert_starts_unadapted(model, config)


def test_vera_trains_and_round_trips(tiny_base, tmp_path):
    config = adapter_config(tiny_base, method="vera", rank=16, layers=[0])
    model = build(config)
    train_steps(model, config, steps=3)
    assert any(torch.count_nonzero(p) for n, p in model.named_parameters() if "vera_lambda_b" in n)
    assert all(".layer.0." in n or ".layers.0." in n for n in trainable(model))
    assert_round_trip(model, config, tmp_path)
