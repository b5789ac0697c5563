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
    with pytest.raises(ConfigError, match=r"tinit \+ tfinal \(0.7 \+ 0.4\) must be below 1"):
        adapter_config(tiny_base, method="adalora", tinit=0.7, tfinal=0.4, total_step=6)
    with pytest.raises(ConfigError, match=r"adapter\.tinit: must be in \[0, 1\), got 10"):
        adapter_config(tiny_base, method="adalora", tinit=10)  # steps are no longer accepted: a fraction of the run
    with pytest.raises(ConfigError, match="target_r"):
        adapter_config(tiny_base, method="adalora", init_r=4, target_r=4)
    model = build(adapter_config(tiny_base, method="adalora", tinit=0.5, tfinal=0.45), ("image",))
    with pytest.raises(ConfigError, match=r"at total_step 6, tinit \(0.5 → 3 steps\)"):
        backbone(model, "image").xmbench_callbacks[0].on_train_start(SimpleNamespace(total_steps=6))


def test_the_default_schedule_scales_with_the_run_and_moves_ranks_off_init_r_and_off_a_uniform_split(tiny_base):
    config = adapter_config(tiny_base, method="adalora", init_r=4, target_r=2)
    model = build(config, ("text", "image"))
    train_steps(model, config, ("text", "image"), steps=20)
    stats = capabilities.adapter_stats(model)
    for m in ("text", "image"):
        assert stats[m]["schedule_steps"] == {"tinit": 2, "tfinal": 8, "delta_t": 1}  # 0.1, 0.4, 0.05 of 20 steps
        assert stats[m]["total_rank"] == 2 * len(stats[m]["ranks"])  # the budget: target_r per layer on average
    moved = {m: (stats[m]["layers_off_init_r"], stats[m]["layers_off_uniform"]) for m in ("text", "image")}
    assert all(off_init == len(stats[m]["ranks"]) for m, (off_init, _) in moved.items())  # every layer pruned
    assert any(off_uniform > 0 for _, off_uniform in moved.values()), moved  # and not all alike: importance decided
    assert stats["text"]["rank_max"] > stats["text"]["rank_min"] or stats["image"]["rank_max"] > stats["image"]["rank_min"]
