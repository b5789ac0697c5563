"""EMA self-distillation: the teacher encodes with θ̄ ← decay·θ̄ + (1 − decay)·θ of the trainable weights, after each step."""
import copy
import dataclasses
from types import SimpleNamespace

import pytest
import torch

from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.errors import ConfigError
from xmbench.models.reference import build_reference
from xmbench.registry import CALLBACKS
from xmbench.train.engine import make_batch, train
from xmbench.train.hooks import Callback
from xmbench.train.step import TrainingStep

PAIRS = [("text", "image"), ("text", "audio"), ("image", "audio")]
DECAY = 0.6


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


class Snapshots(Callback):
    """Listed after the EMA callback: the trainable weights at train start and after every step."""

    def __init__(self):
        self.weights, self.state, self.teacher_during = [], None, None

    def snap(self, state):
        return {n: p.detach().clone() for n, p in state.model.named_parameters() if p.requires_grad}

    def on_train_start(self, state):
        self.state, self.teacher_during = state, state.step_fn.teacher
        self.weights.append(self.snap(state))

    def on_step_end(self, state, log):
        self.weights.append(self.snap(state))


@pytest.fixture(scope="module")
def trained():
    """Three steps of the tiny config with ema_teacher and feature distillation."""
    from tests.conftest import TINY_BASE

    base = copy.deepcopy(TINY_BASE)
    config = resolve(base, {"train": {"steps": 3, "eval_every": 0, "callbacks": [{"name": "ema_teacher", "decay": DECAY}],
                                      "regularizers": [{"name": "distill_features", "weight": 1.0}]}})
    split = load_split(config.data, "train")
    torch.manual_seed(0)
    model = build_reference(config, split.modalities)
    ema = CALLBACKS.bind(config.train.callbacks[0])()
    snapshots = Snapshots()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train(model, split, config.train, seed=0, pairs=PAIRS, progress=False, callbacks=[ema, snapshots])
    finally:
        torch.set_num_threads(threads)
    return SimpleNamespace(config=config, split=split, model=model, ema=ema, snapshots=snapshots, result=result)


def hand_average(weights: list[dict]) -> dict:
    average = {n: w.clone() for n, w in weights[0].items()}
    for step in weights[1:]:
        average = {n: DECAY * average[n] + (1 - DECAY) * step[n] for n in average}
    return average


def test_the_average_is_the_ema_of_the_weights_after_each_step(trained):
    weights = trained.snapshots.weights
    assert len(weights) == 4  # train start, then three steps
    expected = hand_average(weights)
    assert set(trained.ema.ema) == set(expected) and len(expected) > 10  # every trainable tensor, nothing else
    for name, value in expected.items():
        assert torch.allclose(trained.ema.ema[name], value, atol=1e-6), name
    moved = [n for n in expected if not torch.equal(weights[-1][n], expected[n])]
    assert moved  # the average lags the weights


def test_the_teacher_encodes_with_the_averaged_weights_and_leaves_the_student_as_it_was(trained):
    model, split = trained.model, trained.split
    batch = make_batch(split, torch.arange(6), ["text", "image", "audio"], torch.Generator().manual_seed(0))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    taught = trained.ema.teacher(batch)
    assert model.training  # back in the mode it was in
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    copy_ = copy.deepcopy(model).eval()
    with torch.no_grad():
        for name, parameter in copy_.named_parameters():
            if name in trained.ema.ema:
                parameter.copy_(hand_average(trained.snapshots.weights)[name])
        for modality in ("text", "image", "audio"):
            expected = copy_.encode(modality, batch.inputs[modality])
            assert torch.allclose(taught[modality], expected, atol=1e-5), modality
            assert not torch.allclose(taught[modality], model.eval().encode(modality, batch.inputs[modality]), atol=1e-4)
    assert not any(t.requires_grad for t in taught.values())


def test_the_step_uses_the_teacher_while_training_and_drops_it_after(trained):
    assert trained.snapshots.teacher_during == trained.ema.teacher
    assert trained.snapshots.state.step_fn.teacher is None
    distilled = [log.pair_losses["reg/distill_features"] for log in trained.result.steps]
    # at step 0 the average is the student itself: nothing to distil; then the student moves ahead of it
    assert distilled[0] == pytest.approx(0.0, abs=1e-6) and all(d > 1e-6 for d in distilled[1:])
    assert [log.notes["ema_teacher/decay"] for log in trained.result.steps] == [DECAY] * 3


def test_the_swap_leaves_the_student_s_gradients_untouched(trained):
    """The teacher runs after the student's forward and before its backward: the gradients must not see it."""
    model, split, config = trained.model, trained.split, trained.config
    model.train()
    batch = make_batch(split, torch.arange(8), ["text", "image", "audio"], torch.Generator().manual_seed(1))

    def gradients(teacher):
        step = TrainingStep(model, dataclasses.replace(config.train, regularizers=[]), PAIRS, teacher=teacher)
        model.zero_grad(set_to_none=True)
        step(batch).total.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    plain, with_teacher = gradients(None), gradients(trained.ema.teacher)
    assert plain.keys() == with_teacher.keys() and plain
    assert all(torch.allclose(plain[n], with_teacher[n], atol=1e-7) for n in plain)


def test_a_run_with_another_teacher_refuses_a_second_one():
    ema = CALLBACKS.bind(CALLBACKS.default("ema_teacher"))()
    state = SimpleNamespace(model=torch.nn.Linear(2, 2), step_fn=SimpleNamespace(teacher=lambda batch: {}), notes={})
    with pytest.raises(ConfigError, match="already has a teacher"):
        ema.on_train_start(state)


def test_the_average_survives_a_checkpoint(trained):
    saved = trained.ema.state_dict()
    fresh = CALLBACKS.bind(CALLBACKS.default("ema_teacher", decay=DECAY))()
    fresh.load_state_dict(saved)
    assert saved["ema"].keys() == fresh.ema.keys()
    assert all(torch.equal(fresh.ema[n], trained.ema.ema[n]) for n in saved["ema"])
