"""Modality dropout: a seeded draw per step masks one modality, whose pairs do not train that step."""
import random

import pytest

from xmbench.registry import CALLBACKS

from .conftest import NAMES, fake_state, trained

KEY = "modality_dropout"


def expected_drop(seed: int, step: int, p: float, candidates: list[str]):
    """The documented draw: u, then a candidate, from random.Random(seed · 1000003 + step)."""
    rng = random.Random(seed * 1_000_003 + step)
    mask, pick = rng.random(), rng.random()
    return candidates[int(pick * len(candidates))] if mask < p else None


def test_masked_steps_train_only_the_other_modalities_pairs_and_the_pairs_come_back(run):
    result, spy = run([{"name": KEY, "p": 0.5, "seed": 3}])
    dropped = [s.notes[f"{KEY}/dropped"] for s in result.steps]
    assert dropped == [expected_drop(3, step, 0.5, ["audio", "image", "text"]) for step in range(6)]
    assert dropped == ["audio", None, None, None, None, "image"]  # this seed's masks, pinned
    assert [trained(s) for s in result.steps] == [[p for p in NAMES if m is None or m not in p.split("-")]
                                                  for m in dropped]
    assert spy.final_pairs == NAMES  # each mask lasted one step


def test_reproducible_from_the_seed_and_about_p_of_the_steps():
    def masks(seed, p=0.3, **options):
        callback, state, seen = CALLBACKS.bind(CALLBACKS.default(KEY, p=p, seed=seed, **options))(), fake_state(), []
        for step in range(200):
            state.step = step
            callback.on_step_start(state)
            seen.append(state.notes[f"{KEY}/dropped"])
            callback.on_step_end(state, None)
            assert [f"{a}-{b}" for a, b in state.step_fn.pairs] == NAMES
        return seen

    first = masks(0)
    assert masks(0) == first and masks(1) != first
    assert 40 <= sum(m is not None for m in first) <= 80 and set(first) == {None, "text", "image", "audio"}
    assert set(masks(0, modalities=["audio"])) == {None, "audio"}
    assert set(masks(0, p=0.0)) == {None}


def test_a_modality_is_masked_only_if_a_pair_is_left():
    callback = CALLBACKS.bind(CALLBACKS.default(KEY, p=0.999))()
    state = fake_state(pairs=["text-image"])
    callback.on_step_start(state)
    assert state.notes == {f"{KEY}/dropped": None} and state.step_fn.pairs == [("text", "image")]
    assert callback.candidates([("text", "audio"), ("image", "audio")]) == ["image", "text"]  # audio: nothing left


def test_a_change_by_another_callback_is_not_undone():
    callback = CALLBACKS.bind(CALLBACKS.default(KEY, p=0.999))()
    state = fake_state()
    callback.on_step_start(state)
    assert len(state.step_fn.pairs) == 1
    state.step_fn.pairs = [("text", "image"), ("text", "audio")]  # e.g. a curriculum stepping in
    callback.on_step_end(state, None)
    assert state.step_fn.pairs == [("text", "image"), ("text", "audio")]


def test_after_a_curriculum_it_masks_among_the_curriculums_pairs(run):
    result, spy = run([{"name": "pair_curriculum", "order": NAMES, "every": 2}, {"name": KEY, "p": 0.999}])
    curriculum = [s.notes["pair_curriculum/pairs"] for s in result.steps]
    assert curriculum == [["text-image"]] * 2 + [["text-image", "text-audio"]] * 2 + [NAMES] * 2
    dropped = [s.notes[f"{KEY}/dropped"] for s in result.steps]
    assert dropped[:2] == [None, None]  # one pair: nothing can be masked
    assert all(m in ("image", "audio") for m in dropped[2:4])  # masking text would leave no pair
    for log, pairs, m in zip(result.steps, curriculum, dropped):
        assert trained(log) == [p for p in pairs if m is None or m not in p.split("-")]
        assert len(trained(log)) == 1
    assert spy.final_pairs == NAMES
    assert pytest.approx(result.steps[-1].loss) == result.steps[-1].pair_losses[trained(result.steps[-1])[0]]
