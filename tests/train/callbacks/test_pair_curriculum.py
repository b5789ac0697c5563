"""The pair curriculum: step 0 measures each pair's loss, then pairs join easiest first on schedule."""
import pytest

from xmbench.config import resolve
from xmbench.errors import ConfigError

from .conftest import NAMES, trained

KEY = "pair_curriculum"


def test_measured_order_then_one_more_pair_at_evenly_spread_steps(run):
    result, spy = run([{"name": KEY}])  # every = 0, full_at = 0.5 of 6 steps: all pairs from step 3
    difficulty = {p: result.steps[0].pair_losses[p] for p in NAMES}  # the starting model's losses, one batch
    order = sorted(NAMES, key=difficulty.get)
    in_config_order = lambda chosen: [p for p in NAMES if p in chosen]
    expected = [NAMES, [order[0]], in_config_order(order[:2]), NAMES, NAMES, NAMES]
    assert [trained(s) for s in result.steps] == expected
    assert [s.notes[f"{KEY}/pairs"] for s in result.steps] == expected
    ranked = {f"{KEY}/difficulty": difficulty, f"{KEY}/order": order, f"{KEY}/joins": {order[0]: 1, order[1]: 2, order[2]: 3}}
    assert result.steps[0].notes == {f"{KEY}/pairs": NAMES, **ranked}  # the measuring step: ranked at its end
    assert result.steps[1].notes == {f"{KEY}/pairs": [order[0]], **ranked}
    assert result.steps[1].loss == pytest.approx(result.steps[1].pair_losses[order[0]])  # one pair: its loss
    assert spy.weights == [dict.fromkeys(NAMES, 1.0)] * 6  # weights are not its business


def test_given_order_hardest_first_every_k_steps(run):
    result, _ = run([{"name": KEY, "order": ["text-image", "image-audio", "text-audio"], "hardest_first": True,
                      "every": 2}])
    # no measuring step: text-audio from step 0, image-audio joins at 2, text-image at 4
    assert [trained(s) for s in result.steps] == [["text-audio"]] * 2 + [["text-audio", "image-audio"]] * 2 + [NAMES] * 2
    assert result.steps[0].notes[f"{KEY}/order"] == ["text-audio", "image-audio", "text-image"]
    assert result.steps[0].notes[f"{KEY}/joins"] == {"text-audio": 0, "image-audio": 2, "text-image": 4}
    assert f"{KEY}/difficulty" not in result.steps[-1].notes


def test_options_are_checked(tiny_base, run):
    with pytest.raises(ConfigError, match=r"train\.callbacks\[0\]: order: names a pair twice"):
        resolve(tiny_base, {"train.callbacks": [{"name": KEY, "order": ["text-image", "text-image"]}]})
    with pytest.raises(ConfigError, match=r"train\.callbacks\[0\]\.full_at: must be in \[0, 1\]"):
        resolve(tiny_base, {"train.callbacks": [{"name": KEY, "full_at": 1.5}]})
    with pytest.raises(ConfigError, match=r"pair_curriculum\.order: lacks trained pairs image-audio"):
        run([{"name": KEY, "order": ["text-image", "text-audio"]}], steps=1)
    with pytest.raises(ConfigError, match=r"pair_curriculum\.order: 'text-audio' is not a trained pair"):
        run([{"name": KEY, "order": ["text-image", "text-audio"]}], steps=1, pairs=["text-image"])


def test_under_several_ranks_every_rank_ranks_the_mean_losses(monkeypatch):
    from types import SimpleNamespace

    from xmbench.registry import CALLBACKS
    from xmbench.train import distributed

    from .conftest import fake_state

    monkeypatch.setattr(distributed, "current", lambda: distributed.Ranks(1, 2, 1, "gloo"))
    monkeypatch.setattr(distributed, "mean", lambda value: 10 - value)  # what the other rank saw reverses the order
    callback, state = CALLBACKS.bind(CALLBACKS.default(KEY, every=1))(), fake_state(total_steps=4)
    callback.on_train_start(state)
    callback.on_step_start(state)
    callback.on_step_end(state, SimpleNamespace(pair_losses={"text-image": 1.0, "text-audio": 2.0, "image-audio": 3.0}))
    assert state.notes[f"{KEY}/difficulty"] == {"text-image": 9.0, "text-audio": 8.0, "image-audio": 7.0}
    assert state.notes[f"{KEY}/order"] == ["image-audio", "text-audio", "text-image"]


def test_a_pair_masked_at_the_measuring_step_comes_last_even_hardest_first():
    from types import SimpleNamespace

    from xmbench.registry import CALLBACKS

    from .conftest import fake_state

    callback, state = CALLBACKS.bind(CALLBACKS.default(KEY, hardest_first=True))(), fake_state(total_steps=4)
    callback.on_train_start(state)
    callback.on_step_start(state)
    callback.on_step_end(state, SimpleNamespace(pair_losses={"text-image": 1.0, "text-audio": 2.0, "reg/x": 5.0}))
    assert state.notes[f"{KEY}/order"] == ["text-audio", "text-image", "image-audio"]
    assert state.notes[f"{KEY}/joins"] == {"text-audio": 1, "text-image": 2, "image-audio": 2}  # last = round(0.5 · 4)
