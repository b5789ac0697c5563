import torch

from xmbench.profile.memory_trace import MemoryProbe
from xmbench.train.engine import train
from xmbench.train.hooks import TrainState


def nbytes(parameters):
    return sum(p.numel() * p.element_size() for p in parameters)


def test_breakdown_matches_the_model_and_optimizer(tiny_setup):
    config, model, train_split, _, pairs = tiny_setup
    probe = MemoryProbe()
    train(model, train_split, config.train, seed=0, pairs=pairs, progress=False, callbacks=[probe])
    result = probe.result()
    breakdown = result["breakdown_bytes"]
    for modality in ("text", "image", "audio"):
        tower = [p for n, p in model.named_parameters() if n.startswith(f"towers.{modality}.")]
        trainable = [p for p in tower if p.requires_grad]
        parts = breakdown[f"tower/{modality}"]
        assert parts["frozen_weights"] == nbytes(p for p in tower if not p.requires_grad) > 0
        assert parts["trainable_weights"] == nbytes(trainable) > 0
        assert parts["gradients"] == nbytes(trainable)  # one fp32 gradient per trainable weight
        # AdamW: exp_avg and exp_avg_sq like the weight, plus a 4-byte step counter per tensor
        assert parts["optimizer_state"] == 2 * nbytes(trainable) + 4 * len(trainable)
        assert parts["activations"] > 0
    assert breakdown["temperature"]["trainable_weights"] == 4
    assert set(result["per_phase"]) == {"data", "forward", "backward", "optimizer"}
    assert all(v["peak_mb"] > 0 for v in result["per_phase"].values())


def test_activations_count_saved_tensors_not_weights(tiny_setup):
    config, model, train_split, test_split, pairs = tiny_setup
    probe = MemoryProbe()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    state = TrainState(model, optimizer, step_fn=None, sampler=None, total_steps=1)
    probe.on_train_start(state)
    try:
        probe.phase_started("forward")
        x = torch.randn(4, 16, requires_grad=True)
        y = (x * 2).sin()  # saves the product (4·16·4 bytes) for sin's backward; mul by a constant saves nothing
        probe.phase_ended("forward")
    finally:
        probe.on_train_end(state)
    assert probe.breakdown["loss"]["activations"] == 4 * 16 * 4
    assert y.requires_grad
