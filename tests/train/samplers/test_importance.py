"""Importance sampling: an EMA of each item's loss, draws ∝ (EMA + floor)^alpha without replacement."""
import io

import pytest
import torch

from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.errors import ConfigError
from xmbench.models.reference import build_reference
from xmbench.registry import SAMPLERS
from xmbench.train.engine import train


def sampler(n=6, batch_size=2, seed=0, **options):
    return SAMPLERS.bind(SAMPLERS.default("importance", **options))([str(i) for i in range(n)], batch_size, seed)


def test_the_ema_and_the_weights_by_hand():
    s = sampler(n=4, alpha=2.0, ema=0.5, floor=0.1, warm_start=False)
    s.observe(torch.tensor([0, 1, 2]), torch.tensor([1.0, 3.0, 0.0]))  # the first loss starts each EMA
    s.observe(torch.tensor([0, 2]), torch.tensor([2.0, 4.0]))  # then e ← 0.5 e + 0.5 loss
    ema = [1.5, 3.0, 2.0]
    weights = [(e + 0.1) ** 2 for e in ema]
    weights.append(sum(weights) / 3)  # item 3 was never seen: the mean weight of the seen ones
    assert s.difficulty.ema[:3].tolist() == pytest.approx(ema)
    assert s.probabilities().tolist() == pytest.approx([w / sum(weights) for w in weights])


def test_first_draws_follow_the_probabilities_and_batches_never_repeat_an_item():
    s = sampler(n=4, batch_size=1, alpha=1.0, floor=0.5, warm_start=False)
    s.observe(torch.arange(4), torch.tensor([0.5, 1.5, 3.5, 0.5]))
    counts = torch.bincount(torch.cat([s.next() for _ in range(4000)]), minlength=4).double() / 4000
    assert counts.tolist() == pytest.approx([0.125, 0.25, 0.5, 0.125], abs=0.025)  # (loss + 0.5) / 8
    s.batch_size = 4  # a callback may change it
    for _ in range(50):
        assert sorted(s.next().tolist()) == [0, 1, 2, 3]
    uniform = sampler(n=4, batch_size=1, alpha=0.0, warm_start=False)
    uniform.observe(torch.arange(4), torch.tensor([0.0, 0.0, 100.0, 0.0]))
    assert uniform.probabilities().tolist() == pytest.approx([0.25] * 4)


def test_warm_start_walks_every_item_once_first():
    s = sampler(n=5, batch_size=2, alpha=4.0)
    s.observe(torch.tensor([0]), torch.tensor([50.0]))  # item 0 is very hard, but the first pass goes on
    first = torch.cat([s.next() for _ in range(2)]).tolist()
    last = s.next().tolist()  # the pass's fifth item, and one weighted draw among the others
    assert len(set(first + last[:1])) == 5 and len(set(last)) == 2
    unseen = sampler(n=5, batch_size=2, warm_start=False)
    assert unseen.probabilities().tolist() == pytest.approx([0.2] * 5)  # nothing observed: uniform


def test_non_finite_losses_are_ignored_and_state_round_trips():
    s = sampler(n=6, batch_size=3)
    s.observe(torch.tensor([0, 1]), torch.tensor([float("nan"), 2.0]))
    assert s.difficulty.seen.tolist() == [False, True, False, False, False, False]
    for _ in range(3):
        s.next()
    buffer = io.BytesIO()
    torch.save(s.state_dict(), buffer)  # what a checkpoint holds (read back with weights_only)
    buffer.seek(0)
    resumed = sampler(n=6, batch_size=3, seed=9)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert [resumed.next().tolist() for _ in range(4)] == [s.next().tolist() for _ in range(4)]


@pytest.mark.parametrize("options, message", [({"floor": 0.0}, r"floor: must be positive"),
                                              ({"ema": 1.0}, r"ema: must be in \[0, 1\)"),
                                              ({"alpha": -1.0}, r"alpha: must be >= 0")])
def test_options_are_checked(tiny_base, options, message):
    with pytest.raises(ConfigError, match=r"train\.sampler\." + message):
        resolve(tiny_base, {"train.sampler": {"name": "importance", **options}})


def test_the_engine_feeds_each_items_loss(tiny_base):
    config = resolve(tiny_base, {"train": {"steps": 3, "eval_every": 0, "sampler": {"name": "importance"}}})
    split = load_split(config.data, "train")
    torch.manual_seed(0)
    from xmbench.train.hooks import Callback

    seen = {}

    class Spy(Callback):
        def on_train_end(self, state):
            seen["sampler"] = state.sampler

    train(build_reference(config, split.modalities), split, config.train, seed=0,
          pairs=config.train.modality_pairs(split.modalities), progress=False, callbacks=[Spy()])
    difficulty = seen["sampler"].difficulty
    assert int(difficulty.seen.sum()) == 3 * 8 and bool((difficulty.ema[difficulty.seen] > 0).all())
