"""SoRA: LoRA with a gate per rank; the proximal L1 step zeroes small gates; stats count effective ranks; round trip."""
from types import SimpleNamespace

import torch

from tests.models.adapters._helpers import (
    MODALITIES,
    adapter_config,
    assert_round_trip,
    assert_starts_unadapted,
    backbone,
    build,
    frozen_twin,
    tower_states,
    train_steps,
    trainable,
)
from xmbench.models import capabilities
from xmbench.models.adapters._layers import GatedLoraLinear


def gated(model, modality):
    return {n: m for n, m in backbone(model, modality).named_modules() if isinstance(m, GatedLoraLinear)}


def test_update_is_b_diag_gate_a_and_dead_ranks_contribute_nothing():
    torch.manual_seed(0)
    layer = GatedLoraLinear(torch.nn.Linear(6, 5), rank=4, alpha=8.0)
    x = torch.randn(3, 6)
    torch.testing.assert_close(layer(x), layer.base(x))  # B = 0: starts as the base layer
    with torch.no_grad():
        layer.sora_B.normal_()
        layer.gate.copy_(torch.tensor([0.5, 0.0, -2.0, 0.0]))
        expected = layer.base(x) + (x @ layer.sora_A.T * layer.gate) @ layer.sora_B.T * (8.0 / 4)
        torch.testing.assert_close(layer(x), expected)
        torch.testing.assert_close(layer.delta_weight(), layer.sora_B @ torch.diag(layer.gate) @ layer.sora_A * 2.0)
        before = layer(x)
        layer.sora_A[1].normal_()  # a rank whose gate is zero
        layer.sora_B[:, 3].normal_()
        assert torch.equal(layer(x), before)
        assert layer.live_ranks() == 2
        layer.prune()
        assert torch.count_nonzero(layer.sora_A[[1, 3]]) == 0 and torch.count_nonzero(layer.sora_B[:, [1, 3]]) == 0
        assert torch.equal(layer(x), before)


def test_proximal_step_soft_thresholds_gates_with_the_groups_lr(tiny_base):
    config = adapter_config(tiny_base, method="sora", rank=4, sparsity_lambda=2.0, targets=["value"], layers=[0])
    model = build(config, ("image",))
    vit = backbone(model, "image")
    (name, layer), = gated(model, "image").items()
    assert name == "layers.0.attention.v_proj"
    with torch.no_grad():
        layer.gate.copy_(torch.tensor([0.05, -0.1, 0.5, -0.3]))
    optimizer = torch.optim.SGD([layer.gate], lr=0.05)  # threshold lr · λ = 0.1
    state = SimpleNamespace(optimizer=optimizer, notes={})
    vit.xmbench_callbacks[0].on_step_end(state, None)
    torch.testing.assert_close(layer.gate.detach(), torch.tensor([0.0, 0.0, 0.4, -0.2]))
    assert (layer.gate == 0).sum() == 2  # exactly zero
    assert state.notes == {"sora/ViTModel/rank": 2}
    stats = vit.xmbench_stats()
    assert stats["effective_rank"] == {"layers.0.attention.v_proj": 2} and stats["total_effective_rank"] == 2
    assert stats["effective_params"] == 2 * (32 + 32 + 1)
    assert stats["params"] == 4 * (32 + 32 + 1)
    assert stats["nonzero_params"] == 4 * 32 + 2  # A is dense, B is zero, two gates live


def test_only_adapters_train_and_the_model_starts_unadapted(tiny_base):
    config = adapter_config(tiny_base, method="sora", targets=["query", "mlp_out"])
    model = build(config)
    for m in MODALITIES:
        assert len(gated(model, m)) == 4
        assert {n.rsplit(".", 1)[-1] for n in trainable(model, m)} == {"sora_A", "sora_B", "gate"}
    assert_starts_unadapted(model, config)


def test_strong_sparsity_kills_every_rank_in_training(tiny_base):
    config = adapter_config(tiny_base, method="sora", sparsity_lambda=1e4)
    model = build(config)
    train_steps(model, config, steps=2)
    stats = capabilities.adapter_stats(model)
    for m in MODALITIES:
        assert set(stats[m]["effective_rank"].values()) == {0} and stats[m]["nonzero_params"] == 0, m
    twin = frozen_twin(config)
    for m in MODALITIES:  # dead ranks contribute nothing: the towers compute the unadapted backbone
        torch.testing.assert_close(tower_states(model, config, m), tower_states(twin, config, m), rtol=0, atol=0)
    heads = sum(int(torch.count_nonzero(p)) for n, p in model.named_parameters()
                if p.requires_grad and not n.startswith("towers."))
    assert capabilities.count_nonzero(model) == heads  # pruned at the end: the record's nonzero count sees it


def test_sora_trains_and_round_trips(tiny_base, tmp_path):
    config = adapter_config(tiny_base, method="sora", rank=4, sparsity_lambda=1.0, layers="top:1")
    model = build(config)
    train_steps(model, config, steps=3)
    for m in MODALITIES:
        for layer in gated(model, m).values():
            assert torch.count_nonzero(layer.sora_B) > 0 and not torch.all(layer.gate == 1)
    rebuilt = assert_round_trip(model, config, tmp_path)
    assert capabilities.adapter_stats(rebuilt) == capabilities.adapter_stats(model)
