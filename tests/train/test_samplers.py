"""Samplers see the training split and per-item statistics; gradient accumulation draws several micro-batches a step."""
import pytest
import torch

from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.models.reference import build_reference
from xmbench.registry import SAMPLERS, Entry, NoOptions
from xmbench.train.engine import train
from xmbench.train.samplers.epoch import EpochSampler

PAIRS = [("text", "image"), ("text", "audio"), ("image", "audio")]


def test_epoch_sampler_never_repeats_an_item_within_a_batch():
    sampler = EpochSampler(10, 4, seed=0)
    for _ in range(20):
        rows = sampler.next()
        assert len(rows) == 4 and len(set(rows.tolist())) == 4


class Recording(EpochSampler):
    """The epoch sampler, recording what the engine tells it."""

    instances: list = []

    def __init__(self, split, batch_size, seed):
        super().__init__(len(split), batch_size, seed)
        self.split, self.observed = split, []
        Recording.instances.append(self)

    def observe(self, rows, per_item_loss):
        self.observed.append((rows.tolist(), per_item_loss.tolist()))


def test_the_configured_sampler_sees_the_split_and_each_items_loss(tiny_base, monkeypatch):
    monkeypatch.setitem(SAMPLERS._entries, "recording", Entry(
        "recording", lambda split, batch_size, seed, options: Recording(split, batch_size, seed), NoOptions, ""))
    config = resolve(tiny_base, {"train.sampler": "recording"})
    split = load_split(config.data, "train")
    torch.manual_seed(0)
    train(build_reference(config, split.modalities), split, config.train, seed=0, pairs=PAIRS, progress=False)
    sampler = Recording.instances[-1]
    assert sampler.split is split  # its ids, its length, which items have which modality
    assert len(sampler.observed) == config.train.steps
    rows, losses = sampler.observed[0]
    assert len(rows) == len(losses) == config.train.batch_size and all(x > 0 for x in losses)


def test_gradient_accumulation_draws_micro_batches_and_averages_their_losses(tiny_base):
    config = resolve(tiny_base, {"train.accumulation": 3, "train.batch_size": 4, "train.steps": 2})
    split = load_split(config.data, "train")
    torch.manual_seed(0)
    model = build_reference(config, split.modalities)
    losses = []

    from xmbench.train.hooks import Callback

    class Spy(Callback):
        def phase_ended(self, name):
            losses.append(name)

    result = train(model, split, config.train, seed=0, pairs=PAIRS, progress=False, callbacks=[Spy()])
    assert [round(s.samples_per_s * s.seconds) for s in result.steps] == [12, 12]
    assert losses[:8] == ["data", "forward", "backward", "forward", "backward", "forward", "backward", "optimizer"]


def test_augmentations_transform_every_training_batch_reproducibly(tiny_base, monkeypatch):
    """The augmentation seam: built with the split, called on each batch with the run's own generator."""
    from xmbench.registry import AUGMENTATIONS

    seen = []

    def build(split, options):
        def jitter(batch, generator):
            noise = torch.rand(1, generator=generator).item()
            seen.append(noise)
            pixels = batch.inputs["image"]["pixel_values"]
            batch.inputs["image"] = {"pixel_values": pixels + noise}
            return batch

        return jitter

    monkeypatch.setitem(AUGMENTATIONS._entries, "jitter", Entry("jitter", build, NoOptions, ""))
    config = resolve(tiny_base, {"train.augment": ["jitter"]})
    split = load_split(config.data, "train")
    losses = []
    for _ in range(2):
        torch.manual_seed(0)
        steps = train(build_reference(config, split.modalities), split, config.train, seed=0, pairs=PAIRS,
                      progress=False).steps
        losses.append([s.loss for s in steps])
    assert len(seen) == 2 * config.train.steps and seen[:config.train.steps] == seen[config.train.steps:]
    assert losses[0] == losses[1]
    torch.manual_seed(0)
    plain = train(build_reference(config, split.modalities), split, resolve(tiny_base).train, seed=0, pairs=PAIRS,
                  progress=False).steps
    assert [s.loss for s in plain] != losses[0]


def test_cached_accumulation_gives_the_gradients_of_one_big_batch(tiny_base):
    """GradCache: two micro-batches of 8 embedded, one loss over 16, re-encoded: the gradients of a batch of 16."""
    from xmbench.train.hooks import Callback

    class Capture(Callback):
        grads = None

        def after_backward(self, state):
            if self.grads is None:
                self.grads = {n: p.grad.clone() for n, p in state.model.named_parameters() if p.grad is not None}

    def first_step(overrides):
        config = resolve(tiny_base, {"train.steps": 1, **overrides})
        split = load_split(config.data, "train")
        torch.manual_seed(0)
        capture = Capture()
        result = train(build_reference(config, split.modalities), split, config.train, seed=0, pairs=PAIRS,
                       progress=False, callbacks=[capture])
        return result.steps[0], capture.grads

    big, big_grads = first_step({"train.batch_size": 16})
    cached, cached_grads = first_step({"train.batch_size": 8, "train.accumulation": 2, "train.accumulation_mode": "cached"})
    plain, plain_grads = first_step({"train.batch_size": 8, "train.accumulation": 2})
    assert cached.loss == pytest.approx(big.loss, rel=1e-6) and round(cached.samples_per_s * cached.seconds) == 16
    for name, grad in big_grads.items():
        assert (cached_grads[name] - grad).norm() <= 1e-5 * grad.norm(), name
    # plain accumulation averages two 8-item losses: other negatives, other gradients
    assert plain.loss != pytest.approx(big.loss, rel=1e-3)
