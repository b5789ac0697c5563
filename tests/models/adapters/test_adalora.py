"""AdaLoRA: the allocation callback re-allocates ranks to the target budget; the regulariser's gradient; round trip."""
import json
from types import SimpleNamespace

import pytest
import torch

from tests.models.adapters._helpers import adapter_config, assert_round_trip, backbone, build, train_steps, trainable
from xmbench.errors import ConfigError
from xmbench.models import capabilities
from xmbench.models.adapters.adalora import RankAllocation


def test_allocation_runs_every_step_and_prunes_ranks_to_the_target(tiny_base, tmp_path):
    config = adapter_config(tiny_base, method="adalora", init_r=4, target_r=2)
    model = build(config)
    assert {n.split(".")[-2] for n in trainable(model)} == {"lora_A", "lora_B", "lora_E"}
    callbacks = capabilities.training_callbacks(model)
    assert len(callbacks) == 3 and all(isinstance(c, RankAllocation) for c in callbacks)
    stats = capabilities.adapter_stats(model)
    assert stats["image"]["total_rank"] == 4 * 4  # 2 layers × (q, v) at init_r

    result = train_steps(model, config, steps=4)  # total_step is taken from the run
    stats = capabilities.adapter_stats(model)
    for m in ("text", "image", "audio"):
        assert stats[m]["total_step"] == 4 and stats[m]["allocations"] == 4
        assert stats[m]["total_rank"] == 2 * 4  # the final budget: target_r per layer on average
        assert stats[m]["nonzero_singular_values"] <= 2 * 4
        assert set(stats[m]["ranks"]) == {n.split(".base_model.model.")[1].split(".lora_E")[0]
                                          for n in trainable(model, m) if "lora_E" in n}
    assert result.steps[-1].notes["adalora/ViTModel/rank"] < 4 * 4  # the callback notes its budget in the step log
    # masked singular values are zero in the weights, and the adapter is saved at full size
    rebuilt = assert_round_trip(model, config, tmp_path)
    saved = json.loads((tmp_path / "adapters" / "text" / "adapter_config.json").read_text())
    assert saved["rank_pattern"] is None and saved["init_r"] == 4
    assert capabilities.adapter_stats(rebuilt)["text"]["nonzero_singular_values"] == stats["text"]["nonzero_singular_values"]


def test_orthogonal_regulariser_adds_its_gradient_after_backward(tiny_base):
    config = adapter_config(tiny_base, method="adalora", init_r=3, target_r=2, orth_reg_weight=0.5, targets=["query"])
    model = build(config, ("audio",))
    peft_model = backbone(model, "audio")
    factors = [(n, p) for n, p in peft_model.named_parameters() if "lora_A" in n or "lora_B" in n]
    expected = 0
    for n, p in factors:
        gram = p @ p.T if "lora_A" in n else p.T @ p
        expected = expected + torch.linalg.matrix_norm(gram - torch.eye(3))
    grads = torch.autograd.grad(0.5 * expected / len(factors), [p for _, p in factors])
    for _, p in peft_model.named_parameters():
        p.grad = torch.zeros_like(p) if p.requires_grad else None
    peft_model.xmbench_callbacks[0].after_backward(SimpleNamespace())
    for (_, p), g in zip(factors, grads):
        torch.testing.assert_close(p.grad, g)


def test_schedule_without_room_to_allocate_is_a_config_error(tiny_base):
    with pytest.raises(ConfigError, match="tinit"):
        adapter_config(tiny_base, method="adalora", tinit=4, tfinal=2, total_step=6)
    with pytest.raises(ConfigError, match="target_r"):
        adapter_config(tiny_base, method="adalora", init_r=4, target_r=4)
    model = build(adapter_config(tiny_base, method="adalora", tinit=10), ("image",))
    with pytest.raises(ConfigError, match="total_step"):
        backbone(model, "image").xmbench_callbacks[0].on_train_start(SimpleNamespace(total_steps=6))
