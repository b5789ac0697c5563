import dataclasses

import pytest
import torch

from xmbench.data.sources import load_split
from xmbench.errors import NonFiniteLossError
from xmbench.models import capabilities
from xmbench.models.reference import build_reference
from xmbench.registry import LOSSES
from xmbench.train.engine import train
from xmbench.train.step import LossOutput

PAIRS = [("text", "image"), ("text", "audio"), ("image", "audio")]


def tiny_model(config, seed=0):
    torch.manual_seed(seed)
    return build_reference(config, ("text", "image", "audio"))


def run(config, checkpoint_dir=None, steps=None, seed=0, model=None):
    cfg = dataclasses.replace(config.train, steps=steps or config.train.steps)
    model = model or tiny_model(config, seed)
    result = train(model, load_split(config.data, "train"), cfg, seed=seed, pairs=PAIRS,
                   checkpoint_dir=checkpoint_dir, progress=False)
    return model, result


def test_training_lowers_the_loss(tiny_config):
    config = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, steps=30, lr=5e-3))
    _, result = run(config)
    first, last = [s.loss for s in result.steps[:5]], [s.loss for s in result.steps[-5:]]
    assert sum(last) < sum(first)
    assert len(result.steps) == 30 and all(s.samples_per_s > 0 for s in result.steps)
    assert result.steps[0].lr == pytest.approx(config.train.lr / config.train.warmup_steps)


def test_items_lacking_modalities_train_on_balanced_batches_and_log_each_pairs_rows(tiny_base):
    from xmbench.config import resolve

    config = resolve(tiny_base, {"data.missing": {"image": 0.4, "audio": 0.4}, "train.sampler": "modality_balanced",
                                 "train.batch_size": 6, "train.steps": 3})
    split = load_split(config.data, "train")
    assert [int(p.sum()) for p in split.present.values()] == [48, 29, 29]  # 19 without image, 19 without audio
    _, result = run(config)
    assert all(s.loss == s.loss for s in result.steps)  # finite
    # a third of each batch per pattern (text+audio, text+image, complete): 2 + 2 rows for text-image, 2 for image-audio
    assert [s.notes["pair_rows"] for s in result.steps] == [{"text-image": 4, "text-audio": 4, "image-audio": 2}] * 3


def test_same_seed_same_losses(tiny_config):
    _, a = run(tiny_config)
    _, b = run(tiny_config)
    assert [s.loss for s in a.steps] == [s.loss for s in b.steps]


def test_resume_from_checkpoint_equals_an_uninterrupted_run(tiny_config, tmp_path):
    config = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, checkpoint_every=3))
    straight, straight_result = run(config)
    run(config, checkpoint_dir=tmp_path, steps=3)  # "crash" after the checkpoint at step 3
    resumed, resumed_result = run(config, checkpoint_dir=tmp_path)  # fresh model, resumes at step 3
    assert [s.loss for s in resumed_result.steps] == [s.loss for s in straight_result.steps]
    for (name, a), (_, b) in zip(straight.named_parameters(), resumed.named_parameters()):
        assert torch.equal(a, b), name


def test_nan_loss_stops_with_a_clear_error(tiny_config, monkeypatch):
    def nan_loss(inputs, options):
        value = sum(e.sum() for e in inputs.embeddings.values()) * float("nan")
        return LossOutput({"text-image": value})

    monkeypatch.setitem(LOSSES._entries, "infonce", dataclasses.replace(LOSSES.entry("infonce"), builder=nan_loss))
    with pytest.raises(NonFiniteLossError, match=r"loss became nan at step 0 \(pairs: text-image=nan\)"):
        run(tiny_config)


def test_logit_scale_default_for_models_without_one():
    scales = capabilities.logit_scales(object(), [("text", "image")])
    assert scales["text-image"].item() == pytest.approx(1 / 0.07)


def test_a_diverging_temperature_stops_with_a_clear_error(tiny_config):
    """lr 1e6 without clipping drives the logit scale to 0: a clear error, not a division by zero."""
    config = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, lr=1e6, grad_clip=0.0,
                                                                        steps=30))
    with pytest.raises(NonFiniteLossError, match=r"the logit scale became 0.0 at step \d+ \(temperature infinite\)"):
        run(config)


def test_a_variant_trains_validates_and_evaluates_on_each_device(tiny_base, tmp_path, device):
    from xmbench.bench.runner import run_suite
    from xmbench.suite import parse_suite

    base = {**tiny_base, "train": {**tiny_base["train"], "device": device}}
    (record,) = run_suite(parse_suite({"suite": {"name": "dev"}, "base": base, "variants": {"a": {}}}), tmp_path / "r",
                          tmp_path / "a", progress=False, isolate=False)
    assert record.ok, record.error
    assert [p["step"] for p in record.curve] == [3, 6] and record.metrics["t2i"]["n_queries"] == 120
