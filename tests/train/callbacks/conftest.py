"""Short training runs of the tiny config with registered callbacks, and a spy of what each step saw."""
from types import SimpleNamespace

import pytest
import torch

from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.models.reference import build_reference
from xmbench.registry import CALLBACKS
from xmbench.train.engine import train
from xmbench.train.hooks import Callback

NAMES = ["text-image", "text-audio", "image-audio"]


class Spy(Callback):
    """Listed last: what the engine used at each step, and the pairs left at the end."""

    def __init__(self):
        self.weights, self.final_pairs = [], None

    def on_step_end(self, state, log):
        self.weights.append(dict(state.step_fn.pair_weights))

    def on_train_end(self, state):
        self.final_pairs = [f"{a}-{b}" for a, b in state.step_fn.pairs]


def trained(log) -> list[str]:
    """The pairs that trained at a step: the pair parts of its objective, in order."""
    return [name for name in log.pair_losses if not name.startswith("reg/")]


def batch_size(log) -> int:
    return round(log.samples_per_s * log.seconds)


@pytest.fixture
def run(tiny_base):
    """run(callbacks, **train options) → (TrainResult, Spy): `steps` steps of the tiny config, no validation."""
    def run(callbacks, steps=6, **train_options):
        config = resolve(tiny_base, {"train": {"callbacks": callbacks, "steps": steps, "eval_every": 0, **train_options}})
        split = load_split(config.data, "train")
        torch.manual_seed(0)
        model = build_reference(config, split.modalities)
        spy = Spy()
        built = [CALLBACKS.bind(choice)() for choice in config.train.callbacks] + [spy]
        result = train(model, split, config.train, seed=0, pairs=config.train.modality_pairs(split.modalities),
                       progress=False, callbacks=built)
        return result, spy

    return run


def fake_state(pairs=NAMES, weights=None, total_steps=5, batch=8):
    """A TrainState stand-in for schedule arithmetic without training."""
    return SimpleNamespace(step_fn=SimpleNamespace(pairs=[tuple(p.split("-")) for p in pairs],
                                                   pair_weights=weights or dict.fromkeys(pairs, 1.0)),
                           sampler=SimpleNamespace(batch_size=batch), total_steps=total_steps, step=0, notes={})
