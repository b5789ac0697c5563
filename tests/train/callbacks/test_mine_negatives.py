"""Hard-negative mining: each item's nearest other items under the current model, given to the sampler,
and how often they hold the data's known hard negatives (both directions) against chance."""
import math
from types import SimpleNamespace

import pytest
import torch

from xmbench.errors import ConfigError
from xmbench.registry import CALLBACKS, SAMPLERS

KEY = "mine_negatives"


class Split:
    """A stand-in training split: inputs are row numbers, two captions per item."""

    def __init__(self, n, hard_negative_of=None, modalities=("text", "image")):
        self.ids, self.hard_negative_of, self.modalities = [str(i) for i in range(n)], hard_negative_of, modalities
        self.caption_offsets = torch.arange(n + 1) * 2

    def __len__(self):
        return len(self.ids)

    def rows(self, modality, index):
        return {"row": index}


class Model:
    """Encodes row r as tables[modality][r]; records the mode and grad state it was called in."""

    def __init__(self, tables):
        self.tables, self.training, self.calls = tables, True, []

    def train(self, mode=True):
        self.training = mode

    def encode(self, modality, inputs):
        self.calls.append((modality, self.training, torch.is_grad_enabled(), inputs["row"].tolist()))
        return self.tables[modality][inputs["row"]]


def at(*angles):
    return torch.tensor([[math.cos(t), math.sin(t)] for t in angles])


def state_for(model, split, sampler=None, step=0, seed=0):
    return SimpleNamespace(model=model, split=split, sampler=sampler or SimpleNamespace(), step=step, seed=seed, notes={})


def callback(**options):
    return CALLBACKS.bind(CALLBACKS.default(KEY, **options))()


def test_neighbours_and_recall_by_hand():
    angles = [0.0, 0.1, 1.0, 1.15, 2.5, 3.0]
    split = Split(6, hard_negative_of=[-1, 0, -1, -1, 3, -1])  # 1 was derived from 0, 4 from 3
    model = Model({"image": at(*angles)})
    sampler = SAMPLERS.bind(SAMPLERS.default("hard_negatives"))(split.ids, 4, 0)
    state = state_for(model, split, sampler)
    cb = callback(k=1, every=10)
    cb.on_train_start(state)
    cb.on_step_start(state)
    assert sampler.neighbours.tolist() == [[1], [0], [3], [2], [5], [4]]  # 4's nearest is 5, not 3 (its hard negative)
    # relations (1, 0), (0, 1), (4, 3), (3, 4): the first two found
    assert state.notes == {f"{KEY}/mined_at": 0, f"{KEY}/items": 6, f"{KEY}/mining_recall": 0.5,
                           f"{KEY}/chance": pytest.approx(1 / 5), f"{KEY}/relations": 4}
    assert [c[:3] for c in model.calls] == [("image", False, False)] and model.training  # eval, no grad, restored
    two = callback(k=2, every=10).mine(state_for(model, split, sampler))
    assert two.tolist()[3] == [2, 1] and sampler.neighbours.shape == (6, 2)


def test_text_mines_first_captions_and_mining_runs_every_n_steps():
    split = Split(4, hard_negative_of=None)
    model = Model({"text": at(*[0.1 * i for i in range(8)])})
    cb, state = callback(k=1, every=2, modality="text"), state_for(model, split)
    mined = []
    for step in range(5):
        state.step = step
        cb.on_step_start(state)
        mined.append(state.notes[f"{KEY}/mined_at"])
    assert mined == [0, 0, 2, 2, 4]
    assert model.calls[0][3] == [0, 2, 4, 6]  # each item's first caption row
    assert state.notes[f"{KEY}/mining_recall"] is None and state.notes[f"{KEY}/relations"] == 0  # nothing known


def test_a_large_split_is_mined_on_a_seeded_subset():
    n = 12
    split = Split(n, hard_negative_of=[-1] + list(range(n - 1)))  # a chain: i derived from i − 1
    model = Model({"image": at(*[0.2 * i for i in range(n)])})
    cb = callback(k=2, max_items=5, batch_size=2)
    neighbours = cb.mine(state_for(model, split, step=3, seed=1))
    again = cb.mine(state_for(model, split, step=3, seed=1))
    other = cb.mine(state_for(model, split, step=4, seed=1))
    assert torch.equal(neighbours, again) and not torch.equal(neighbours, other)
    mined = [i for i in range(n) if neighbours[i, 0] >= 0]
    assert len(mined) == 5 and all(set(neighbours[i].tolist()) <= set(mined) - {i} for i in mined)
    assert all(neighbours[i].tolist() == [-1, -1] for i in range(n) if i not in mined)
    assert len(model.calls) == 3 * 3  # five rows, two at a time


def test_items_without_the_modality_are_not_mined():
    split = Split(5)
    split.present = {"image": torch.tensor([True, False, True, True, False])}
    model = Model({"image": at(0.0, 0.05, 0.1, 2.0, 2.05)})  # 1 and 4 would be the nearest of 0 and 3
    neighbours = callback(k=1).mine(state_for(model, split))
    assert neighbours.tolist() == [[2], [-1], [0], [2], [-1]]
    assert model.calls[0][3] == [0, 2, 3]  # the absent rows are not even encoded


def test_the_modality_must_be_in_the_split():
    with pytest.raises(ConfigError, match=r"mine_negatives\.modality: the training split has no audio"):
        callback(modality="audio").on_train_start(state_for(Model({}), Split(4)))


def test_mining_feeds_the_sampler_during_training(tiny_base):
    from xmbench.config import resolve
    from xmbench.data.sources import load_split
    from xmbench.models.reference import build_reference
    from xmbench.train.engine import train
    from xmbench.train.hooks import Callback

    config = resolve(tiny_base, {"train": {"steps": 3, "eval_every": 0, "sampler": {"name": "hard_negatives"},
                                           "callbacks": [{"name": KEY, "every": 2, "k": 2}]}})
    split = load_split(config.data, "train")
    torch.manual_seed(0)
    batches = []

    class Batches(Callback):
        def on_step_end(self, state, log):
            batches.append((dict(state.sampler.last), state.sampler.neighbours.clone()))

    built = [CALLBACKS.bind(choice)() for choice in config.train.callbacks] + [Batches()]
    result = train(build_reference(config, split.modalities), split, config.train, seed=0,
                   pairs=config.train.modality_pairs(split.modalities), progress=False, callbacks=built)
    notes = [log.notes for log in result.steps]
    assert [n[f"{KEY}/mined_at"] for n in notes] == [0, 0, 2]
    assert notes[0][f"{KEY}/chance"] == pytest.approx(2 / 47) and notes[0][f"{KEY}/items"] == 48
    assert notes[0][f"{KEY}/relations"] == 2 * sum(h >= 0 for h in split.hard_negative_of) > 0
    assert 0 <= notes[0][f"{KEY}/mining_recall"] <= 1
    for last, neighbours in batches:  # every batch: 4 anchors, each followed by its nearest mined neighbour
        assert len(last["anchors"]) + len(last["neighbours"]) == 8 and len(last["neighbours"]) > 0
        assert all(any(nb == neighbours[a, 0] for a in last["anchors"]) for nb in last["neighbours"])
