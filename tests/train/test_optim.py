"""Parameter groups per component, lr multipliers the schedule scales, groups that gain unfrozen parameters."""
import dataclasses

import pytest
import torch

from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.errors import ConfigError
from xmbench.models.reference import build_reference
from xmbench.train.engine import train
from xmbench.train.hooks import Callback
from xmbench.train.optim import ParameterGroups, set_learning_rate

PAIRS = [("text", "image"), ("text", "audio"), ("image", "audio")]


def model_of(config):
    torch.manual_seed(0)
    return build_reference(config, ("text", "image", "audio"))


def test_one_group_per_component_with_its_multiplier(tiny_base):
    config = resolve(tiny_base, {"train.lr_scale": {"tower/*": 0.1, "temperature": 0.0, "tower/audio": 5.0}})
    optimizer = ParameterGroups(model_of(config), config.train.lr_scale).build(config.train)
    groups = {g["component"]: g for g in optimizer.param_groups}
    # in the model's parameter order (a module's own parameters come before its children's)
    assert list(groups) == ["temperature", "tower/text", "tower/image", "tower/audio", "head/text", "head/image",
                            "head/audio"]
    # the first matching pattern wins: tower/audio matches "tower/*" before its own entry
    assert [groups[c]["lr_scale"] for c in ("tower/text", "tower/audio", "head/text", "temperature")] == [0.1, 0.1, 1, 0]
    set_learning_rate(optimizer, 2e-3)
    assert groups["tower/image"]["lr"] == pytest.approx(2e-4) and groups["head/audio"]["lr"] == 2e-3


def test_a_pattern_that_matches_nothing_is_an_error(tiny_base):
    config = resolve(tiny_base, {"train.lr_scale": {"towers/*": 0.1}})
    with pytest.raises(ConfigError, match=r"train\.lr_scale\.towers/\*: matches no component.*tower/text"):
        ParameterGroups(model_of(config), config.train.lr_scale)


def test_the_schedule_scales_each_group_and_a_zero_multiplier_freezes(tiny_base):
    config = resolve(tiny_base, {"train.lr_scale": {"head/*": 0.0}})
    model = model_of(config)
    heads = {n: p.detach().clone() for n, p in model.named_parameters() if n.startswith("heads.")}
    seen = []

    class Lrs(Callback):
        def on_step_end(self, state, log):
            seen.append({g["component"]: g["lr"] for g in state.optimizer.param_groups})

    train(model, load_split(config.data, "train"), config.train, seed=0, pairs=PAIRS, progress=False, callbacks=[Lrs()])
    assert all(row["head/text"] == 0.0 and row["tower/text"] > 0 for row in seen)
    assert seen[0]["tower/text"] == pytest.approx(config.train.lr / config.train.warmup_steps)
    weight_decay_free = all(torch.equal(p, heads[n]) for n, p in model.named_parameters() if n.startswith("heads."))
    assert weight_decay_free  # lr 0: neither the update nor decoupled weight decay moves them


def test_parameters_unfrozen_by_a_callback_join_the_optimizer(tiny_base):
    config = resolve(tiny_base, {"model.*.adapter.method": "frozen"})
    model = model_of(config)
    split = load_split(config.data, "train")
    before = {n: p.detach().clone() for n, p in model.named_parameters() if n.startswith("towers.image.")}
    groups_seen = []

    class Unfreeze(Callback):
        def on_step_start(self, state):
            if state.step == 3:
                assert state.set_trainable(lambda n: n.startswith("towers.image.") and "layers.1." in n) > 0
            groups_seen.append(len(state.optimizer.param_groups))

    train(model, split, dataclasses.replace(config.train, steps=6), seed=0, pairs=PAIRS, progress=False,
          callbacks=[Unfreeze()])
    assert groups_seen[:4] == [4, 4, 4, 5]  # heads and temperature, then tower/image joins
    moved = [n for n, p in model.named_parameters() if n in before and not torch.equal(p, before[n])]
    assert moved and all("layers.1." in n for n in moved)
