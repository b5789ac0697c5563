import math

import pytest
import torch

from xmbench.profile import dynamics
from xmbench.profile.dynamics import GradNormProbe, diagnose, summarize_grad_norms
from xmbench.train.engine import train
from xmbench.train.hooks import Callback


def falling(n=100, start=4.0, end=1.0):
    return [start + (end - start) * i / (n - 1) for i in range(n)]


def curve(points):
    """[(step, train_loss, val_loss, mean R@1)] → curve dicts."""
    return [{"step": s, "train_loss": tl, "val_loss": vl, "val_r1": {"t2i": r, "i2t": r}} for s, tl, vl, r in points]


HEALTHY_CURVE = curve([(50, 3.0, 3.1, 0.20), (100, 2.0, 2.5, 0.21)])


def rules(findings):
    return [f.rule for f in findings]


def test_a_healthy_run_fires_no_rule():
    assert diagnose(falling(), HEALTHY_CURVE) == []


def test_non_finite_loss():
    losses = falling()
    losses[37] = math.nan
    found = diagnose(losses, HEALTHY_CURVE)
    assert rules(found) == ["unstable/non-finite"] and found[0].steps == [37]


def test_loss_spikes():
    losses = falling()
    losses[60] = 3 * losses[59]
    found = diagnose(losses, HEALTHY_CURVE)
    assert rules(found) == ["unstable/spikes"] and found[0].steps == [60]


def test_spikes_during_the_first_window_are_warmup():
    losses = falling()
    losses[5] = 10.0
    assert "unstable/spikes" not in rules(diagnose(losses, HEALTHY_CURVE))


def test_flat_loss_is_underfitting():
    losses = [3.0 + 0.01 * (i % 3) for i in range(100)]
    assert rules(diagnose(losses, HEALTHY_CURVE)) == ["underfitting/flat"]


def test_validation_still_rising_is_underfitting():
    rising = curve([(50, 3.0, 3.1, 0.10), (100, 2.0, 2.5, 0.15)])
    found = diagnose(falling(), rising)
    assert rules(found) == ["underfitting/still-improving"] and found[0].steps == [50, 100]


def test_val_loss_rising_while_train_falls_is_overfitting():
    overfit = curve([(25, 3.0, 2.6, 0.2), (50, 2.0, 2.4, 0.2), (75, 1.5, 2.6, 0.2), (100, 1.0, 2.9, 0.2)])
    found = diagnose(falling(), overfit)
    assert rules(found) == ["overfitting"] and found[0].steps == [50, 100]


def test_val_loss_rising_with_train_loss_is_not_overfitting():
    both = curve([(50, 2.0, 2.4, 0.2), (100, 2.5, 2.9, 0.2)])
    assert "overfitting" not in rules(diagnose(falling(), both))


def test_thresholds_are_module_constants(monkeypatch):
    losses = falling()
    losses[60] = 1.5 * losses[59]
    assert "unstable/spikes" not in rules(diagnose(losses, HEALTHY_CURVE))
    monkeypatch.setattr(dynamics, "SPIKE_FACTOR", 1.4)
    assert "unstable/spikes" in rules(diagnose(losses, HEALTHY_CURVE))


def test_grad_norm_summary_shares_sum_to_one():
    rows = [{"step": 0, "a": 3.0, "b": 4.0}, {"step": 1, "a": 0.0, "b": 2.0}, {"step": 2, "a": 1.0, "b": 0.0}]
    summary = summarize_grad_norms(rows)
    assert summary["a"] == {"median": 1.0, "max": 3.0, "share": pytest.approx(9 / 25)}
    assert summary["b"]["median"] == 2.0 and summary["b"]["share"] == pytest.approx(16 / 25)


def test_grad_norm_probe_matches_the_gradients_it_saw(tiny_setup):
    config, model, train_split, _, pairs = tiny_setup
    probe = GradNormProbe()

    class Check(Callback):  # runs after the grad probe, on the same unclipped gradients
        def after_backward(self, state):
            model = state.model
            text = [p.grad for n, p in model.named_parameters() if n.startswith("towers.text.") and p.grad is not None]
            expected = math.sqrt(sum(float(g.pow(2).sum()) for g in text))
            assert probe.rows[-1]["tower/text"] == pytest.approx(expected, rel=1e-5)
            assert probe.rows[-1]["temperature"] == pytest.approx(float(model.temperature.log_scale.grad.abs()), rel=1e-5)

    train(model, train_split, config.train, seed=0, pairs=pairs, progress=False, callbacks=[probe, Check()])
    assert len(probe.rows) == config.train.steps
    assert set(probe.rows[0]) == {"step", "tower/text", "tower/image", "tower/audio", "head/text", "head/image",
                                  "head/audio", "temperature"}
    assert all(v > 0 for r in probe.rows for k, v in r.items() if k != "step")
    assert torch.isfinite(torch.tensor([v for r in probe.rows for v in r.values()])).all()
