"""Callbacks steer training through the TrainState: pair weights, which pairs train, the batch size."""
import dataclasses

import torch

from xmbench.data.sources import load_split
from xmbench.models.reference import build_reference
from xmbench.registry import CALLBACKS, Entry, NoOptions
from xmbench.train.engine import train
from xmbench.train.hooks import Callback

PAIRS = [("text", "image"), ("text", "audio"), ("image", "audio")]


def test_callbacks_change_pairs_weights_and_batch_size_at_any_step(tiny_config):
    split = load_split(tiny_config.data, "train")
    torch.manual_seed(0)
    model = build_reference(tiny_config, split.modalities)
    events = []

    class Curriculum(Callback):
        def on_train_start(self, state):
            events.append("start")

        def on_step_start(self, state):
            if state.step == 2:  # an easy pair first, then all pairs with a weight, a bigger batch
                state.step_fn.pairs = list(PAIRS)
                state.step_fn.pair_weights = {"text-image": 1.0, "text-audio": 1.0, "image-audio": 2.0}
                state.sampler.batch_size = 12

        def on_validation(self, state, point):
            events.append(f"val@{point.step}")

        def on_train_end(self, state):
            events.append("end")

    cfg = dataclasses.replace(tiny_config.train, steps=4, eval_every=0, pairs=["text-image"])
    result = train(model, split, cfg, seed=0, pairs=[("text", "image")], progress=False, callbacks=[Curriculum()])
    assert [set(s.pair_losses) for s in result.steps] == [{"text-image"}] * 2 + [{"text-image", "text-audio",
                                                                                  "image-audio"}] * 2
    samples = [round(s.samples_per_s * s.seconds) for s in result.steps]
    assert samples == [8, 8, 12, 12]
    parts = result.steps[3].pair_losses
    assert result.steps[3].loss == pytest_approx((parts["text-image"] + parts["text-audio"] + 2 * parts["image-audio"]) / 4)
    assert events == ["start", "end"]


def pytest_approx(value):
    import pytest

    return pytest.approx(value, rel=1e-5)


def test_registered_callbacks_run_from_the_config(tiny_base, monkeypatch, tmp_path):
    from xmbench.bench.runner import run_suite
    from xmbench.suite import parse_suite

    steps_seen = []

    class Count(Callback):
        def on_step_end(self, state, log):
            steps_seen.append(state.step)

    monkeypatch.setitem(CALLBACKS._entries, "count", Entry("count", lambda options: Count(), NoOptions, ""))
    suite = parse_suite({"suite": {"name": "cb"}, "base": tiny_base, "variants": {"a": {"train.callbacks": ["count"]}}})
    (record,) = run_suite(suite, tmp_path / "rec", tmp_path / "art", progress=False, isolate=False)
    assert record.ok, record.error
    assert steps_seen == list(range(tiny_base["train"]["steps"]))
