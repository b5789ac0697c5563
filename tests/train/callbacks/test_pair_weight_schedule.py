"""Scheduled pair weights and batch size: start → end over training, seen by the engine at every step."""
import pytest

from xmbench.config import resolve
from xmbench.errors import ConfigError
from xmbench.registry import CALLBACKS

from .conftest import NAMES, batch_size, fake_state, trained

KEY = "pair_weight_schedule"


def schedule(state, **options):
    """The weight of image-audio at each step of `state`'s run."""
    callback = CALLBACKS.bind(CALLBACKS.default(KEY, weights={"image-audio": [1.0, 3.0]}, **options))()
    seen = []
    for step in range(state.total_steps):
        state.step = step
        callback.on_step_start(state)
        seen.append(state.step_fn.pair_weights["image-audio"])
    return seen


def test_linear_ramp_of_a_weight_and_the_batch_size_through_training(run):
    result, spy = run([{"name": KEY, "weights": {"image-audio": [1.0, 3.0]}, "batch_size": [4, 12]}], steps=5,
                      pair_weights={"text-audio": 0.5})
    ramp = [1.0, 1.5, 2.0, 2.5, 3.0]  # step / (steps - 1): the first step starts, the last ends
    assert spy.weights == [{"text-image": 1.0, "text-audio": 0.5, "image-audio": w} for w in ramp]  # the others kept
    assert [batch_size(s) for s in result.steps] == [4, 6, 8, 10, 12]
    assert [s.notes for s in result.steps] == [{f"{KEY}/weights": {"image-audio": w}, f"{KEY}/batch_size": b}
                                               for w, b in zip(ramp, [4, 6, 8, 10, 12])]
    for log, w in zip(result.steps, ramp):  # the objective weighed the pairs with them
        parts = log.pair_losses
        assert trained(log) == NAMES
        expected = (parts["text-image"] + 0.5 * parts["text-audio"] + w * parts["image-audio"]) / (1.5 + w)
        assert log.loss == pytest.approx(expected, rel=1e-5)


def test_cosine_shape_and_the_ramp_window():
    assert schedule(fake_state(total_steps=4), shape="cosine") == pytest.approx([1.0, 1.5, 2.5, 3.0])  # (1 - cos πt)/2
    assert schedule(fake_state(total_steps=5), ramp=[0.25, 0.75]) == pytest.approx([1.0, 1.0, 2.0, 3.0, 3.0])
    assert schedule(fake_state(total_steps=5), ramp=[0.5, 0.5]) == [1.0, 1.0, 3.0, 3.0, 3.0]  # a switch at half way
    untouched = fake_state()
    CALLBACKS.bind(CALLBACKS.default(KEY))().on_step_start(untouched)  # the defaults change nothing
    assert untouched.step_fn.pair_weights == dict.fromkeys(NAMES, 1.0) and untouched.sampler.batch_size == 8
    assert untouched.notes == {}


@pytest.mark.parametrize("options, message", [
    ({"weights": {"image-audi": [1, 2]}}, r"weights\.image-audi: not a modality pair"),
    ({"weights": {"image-audio": [1]}}, r"weights\.image-audio: expected \[start, end\]"),
    ({"weights": {"image-audio": [1, -1]}}, r"weights\.image-audio\[1\]: must be >= 0"),
    ({"batch_size": [0, 4]}, r"batch_size\[0\]: must be positive"),
    ({"batch_size": [4]}, r"batch_size: expected \[start, end\]"),
    ({"ramp": [0.8, 0.2]}, r"ramp: expected \[a, b\] with 0 <= a <= b <= 1"),
])
def test_options_are_checked(tiny_base, options, message):
    with pytest.raises(ConfigError, match=r"train\.callbacks\[0\]" + r".*" + message):
        resolve(tiny_base, {"train.callbacks": [{"name": KEY, **options}]})


def test_pairs_must_train_and_some_weight_stay_positive(run):
    with pytest.raises(ConfigError, match=r"pair_weight_schedule\.weights: 'image-audio' is not a trained pair"):
        run([{"name": KEY, "weights": {"image-audio": [1, 2]}}], steps=1, pairs=["text-image"])
    callback = CALLBACKS.bind(CALLBACKS.default(KEY, weights={"text-image": [1.0, 0.0]}))()
    state = fake_state(pairs=["text-image"], total_steps=3)
    state.step = 2
    with pytest.raises(ConfigError, match=r"pair_weight_schedule: at step 2 every training pair \(text-image\) has weight 0"):
        callback.on_step_start(state)


def test_the_batch_size_is_per_rank_as_train_batch_size(monkeypatch):
    from xmbench.train import distributed

    monkeypatch.setattr(distributed, "current", lambda: distributed.Ranks(0, 2, 0, "gloo"))
    callback, state = CALLBACKS.bind(CALLBACKS.default(KEY, batch_size=[4, 12]))(), fake_state(total_steps=5)
    callback.on_step_start(state)
    assert state.sampler.batch_size == 8 and state.notes == {f"{KEY}/batch_size": 4}  # the sampler draws both ranks' rows


def test_batch_sizes_round_halves_up():
    callback, state = CALLBACKS.bind(CALLBACKS.default(KEY, batch_size=[4, 5]))(), fake_state(total_steps=3)
    sizes = []
    for step in range(3):
        state.step = step
        callback.on_step_start(state)
        sizes.append(state.sampler.batch_size)
    assert sizes == [4, 5, 5]  # 4.5 → 5, not round()'s even 4
