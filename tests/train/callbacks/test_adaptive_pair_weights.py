"""Adaptive pair weights: (1 − the pair's validation R@1)^power, mean 1, from every validation point on."""
from types import SimpleNamespace

import pytest
import torch

from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.errors import ConfigError
from xmbench.models.reference import build_reference
from xmbench.registry import CALLBACKS
from xmbench.train.engine import train

from .conftest import NAMES, Spy, fake_state

KEY = "adaptive_pair_weights"
R1 = {"t2i": 0.8, "i2t": 0.6, "t2a": 0.2, "a2t": 0.4, "i2a": 1.0, "a2i": 1.0}


def callback(**options):
    return CALLBACKS.bind(CALLBACKS.default(KEY, **options))()


def validated(cb, state, val_r1):
    cb.on_validation(state, SimpleNamespace(step=1, val_r1=val_r1))
    return state.step_fn.pair_weights


def test_weights_by_hand():
    cb, state = callback(power=2.0, floor=0.05), fake_state()
    cb.on_train_start(state)
    weights = validated(cb, state, R1)
    u = {"text-image": (1 - 0.7) ** 2, "text-audio": (1 - 0.3) ** 2, "image-audio": 0.05}  # 0.09, 0.49, floor
    total = sum(u.values())
    assert weights == pytest.approx({p: 3 * v / total for p, v in u.items()})
    assert sum(weights.values()) / 3 == pytest.approx(1.0)
    assert state.notes == {f"{KEY}/weights": weights, f"{KEY}/r1": pytest.approx(
        {"text-image": 0.7, "text-audio": 0.3, "image-audio": 1.0})}
    assert validated(callback(power=0.0), fake_state(), R1) == dict.fromkeys(NAMES, 1.0)


def test_unmeasured_pairs_keep_their_weight_and_one_direction_is_enough():
    cb, state = callback(power=1.0, floor=0.0), fake_state(weights={"text-image": 1.0, "text-audio": 1.0,
                                                                    "image-audio": 3.0})
    cb.on_train_start(state)
    weights = validated(cb, state, {"t2i": 0.5, "t2a": 0.75})  # nothing of image-audio; one direction each
    assert weights == pytest.approx({"text-image": 4 / 3, "text-audio": 2 / 3, "image-audio": 3.0})
    solved = callback(power=1.0, floor=0.0)
    solved.on_train_start(state2 := fake_state())
    assert validated(solved, state2, dict.fromkeys(R1, 1.0)) == dict.fromkeys(NAMES, 1.0)  # nothing to prefer
    untouched = fake_state()
    validated(callback(), untouched, {})
    assert untouched.step_fn.pair_weights == dict.fromkeys(NAMES, 1.0) and untouched.notes == {}


def test_a_resumed_run_restores_the_latest_weights():
    cb, state = callback(), fake_state()
    cb.on_train_start(state)
    validated(cb, state, R1)
    resumed, fresh = callback(), fake_state()
    resumed.load_state_dict(cb.state_dict())
    resumed.on_train_start(fresh)
    assert fresh.step_fn.pair_weights == state.step_fn.pair_weights and fresh.notes == state.notes


def test_options_are_checked(tiny_base):
    with pytest.raises(ConfigError, match=r"train\.callbacks\[0\]\.floor: must be in \[0, 1\]"):
        resolve(tiny_base, {"train.callbacks": [{"name": KEY, "floor": 1.5}]})


def test_the_engine_weighs_the_pairs_from_the_first_validation_point(tiny_base):
    config = resolve(tiny_base, {"train": {"steps": 4, "eval_every": 2, "callbacks": [{"name": KEY, "power": 1.0}]}})
    split = load_split(config.data, "train")
    torch.manual_seed(0)
    spy = Spy()
    built = [CALLBACKS.bind(choice)() for choice in config.train.callbacks] + [spy]
    result = train(build_reference(config, split.modalities), split, config.train, seed=0,
                   pairs=config.train.modality_pairs(split.modalities), progress=False, callbacks=built,
                   validate=lambda model, step_fn: (1.0, R1))
    expected = {"text-image": 0.3 * 3 / 1.05, "text-audio": 0.7 * 3 / 1.05, "image-audio": 0.05 * 3 / 1.05}
    assert spy.weights[:2] == [dict.fromkeys(NAMES, 1.0)] * 2
    assert spy.weights[2] == pytest.approx(expected) and spy.weights[3] == pytest.approx(expected)
    assert [f"{KEY}/weights" in s.notes for s in result.steps] == [False, False, True, True]
    parts = result.steps[2].pair_losses  # the objective weighed the pairs with them
    weighted = sum(expected[p] * parts[p] for p in NAMES) / sum(expected.values())
    assert result.steps[2].loss == pytest.approx(weighted, rel=1e-5)
