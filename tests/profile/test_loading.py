"""The loading probe: the data phase's seconds per step, its share of the step, items loaded per second."""
import pytest
import torch

from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.models.reference import build_reference
from xmbench.profile.loading import LoadingProbe
from xmbench.train.engine import StepLog, train


def step(seconds: float, samples_per_s: float) -> StepLog:
    return StepLog(step=0, loss=1.0, lr=1e-3, temperature=0.07, seconds=seconds, samples_per_s=samples_per_s,
                   pair_losses={})


def test_result_from_phase_times_and_the_step_log():
    probe = LoadingProbe()
    probe.seconds = [0.1, 0.2, 0.4]
    steps = [step(1.0, 32.0), step(1.0, 32.0), step(2.0, 16.0)]  # 32 items a step
    assert probe.result(steps) == pytest.approx({"data_s_per_step": 0.2, "share_of_step": 0.2, "items_per_s": 160.0})


def test_a_resumed_run_pairs_its_measured_steps_with_the_last_ones():
    probe = LoadingProbe()
    probe.seconds = [0.5]
    assert probe.result([step(9.0, 1.0), step(1.0, 10.0)])["share_of_step"] == pytest.approx(0.5)
    assert LoadingProbe().result([step(1.0, 1.0)]) == {}


def test_the_engine_reports_its_data_phase(tiny_base):
    config = resolve(tiny_base, {"train": {"steps": 3, "eval_every": 0}})
    split = load_split(config.data, "train")
    torch.manual_seed(0)
    probe = LoadingProbe()
    result = train(build_reference(config, split.modalities), split, config.train, seed=0,
                   pairs=config.train.modality_pairs(split.modalities), progress=False, callbacks=[probe])
    assert len(probe.seconds) == 3 and all(s > 0 for s in probe.seconds)
    loading = probe.result(result.steps)
    assert 0 < loading["share_of_step"] < 1
    assert loading["items_per_s"] > config.train.batch_size / max(s.seconds for s in result.steps)
