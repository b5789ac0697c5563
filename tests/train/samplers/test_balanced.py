"""Balanced batches: a set share from the hardest and from the easiest items by EMA loss, the rest uniform."""
import io

import pytest
import torch

from xmbench.config import resolve
from xmbench.errors import ConfigError
from xmbench.registry import SAMPLERS


def sampler(n=20, batch_size=8, seed=0, **options):
    return SAMPLERS.bind(SAMPLERS.default("balanced", **options))([str(i) for i in range(n)], batch_size, seed)


def test_shares_come_from_the_hard_and_easy_pools():
    s = sampler(hard_share=0.25, easy_share=0.25, pool=0.25, warm_start=False)
    s.observe(torch.arange(20), torch.arange(20).double())  # item i's loss is i
    hard_pool, easy_pool = set(range(15, 20)), set(range(5))  # round(0.25 · 20) = 5 each
    assert set(s.pools()[0].tolist()) == hard_pool and set(s.pools()[1].tolist()) == easy_pool
    for _ in range(30):
        rows = s.next().tolist()
        assert len(rows) == 8 and len(set(rows)) == 8
        assert s.last == {"hard": 2, "easy": 2}
        assert set(rows[:2]) <= hard_pool and set(rows[2:4]) <= easy_pool  # hard first, then easy, then uniform
    rest = torch.cat([s.next()[4:] for _ in range(400)])
    counts = torch.bincount(rest, minlength=20)
    assert bool((counts > 0).all())  # the uniform rest may be any item, the pools' too


def test_halves_round_up_and_a_small_pool_gives_what_it_has():
    s = sampler(n=10, batch_size=6, hard_share=0.25, easy_share=0.0, pool=0.5, warm_start=False)
    s.observe(torch.arange(10), torch.tensor([5.0, 1, 2, 9, 3, 4, 8, 0, 7, 6]))
    rows = s.next().tolist()
    assert s.last == {"hard": 2, "easy": 0} and set(rows[:2]) <= {3, 6, 8, 9, 0}  # 0.25 · 6 = 1.5 → 2
    tiny_pool = sampler(n=10, batch_size=6, hard_share=0.5, easy_share=0.5, pool=0.1, warm_start=False)
    tiny_pool.observe(torch.arange(10), torch.arange(10).double())
    rows = tiny_pool.next().tolist()
    assert tiny_pool.last == {"hard": 1, "easy": 1} and rows[:2] == [9, 0] and len(set(rows)) == 6


def test_the_ema_decides_the_pools():
    s = sampler(n=4, batch_size=2, hard_share=0.5, easy_share=0.5, pool=0.25, ema=0.5, warm_start=False)
    s.observe(torch.arange(4), torch.tensor([4.0, 3.0, 2.0, 1.0]))
    s.observe(torch.tensor([0]), torch.tensor([0.0]))  # item 0: 0.5 · 4 + 0.5 · 0 = 2, below item 1's 3
    assert s.difficulty.ema.tolist() == [2.0, 3.0, 2.0, 1.0]
    assert s.next().tolist() == [1, 3]


def test_warm_start_first_then_balanced_and_uniform_before_any_loss():
    s = sampler(n=10, batch_size=4)
    assert s.next().tolist() and s.last == {"hard": 0, "easy": 0}  # nothing observed yet: a first-pass batch
    first = [s.next() for _ in range(2)]
    seen_once = torch.cat([s.first.order[:4], *first])
    assert len(set(seen_once.tolist())) == 10  # 4 + 4 + the pass's last 2 and 2 uniform draws
    cold = sampler(n=10, batch_size=4, warm_start=False)
    assert len(set(cold.next().tolist())) == 4 and cold.last == {"hard": 0, "easy": 0}  # no pools: all uniform


def test_state_round_trips():
    s = sampler(n=12, batch_size=4, warm_start=False)
    s.observe(torch.arange(12), torch.rand(12))
    buffer = io.BytesIO()
    torch.save(s.state_dict(), buffer)
    buffer.seek(0)
    resumed = sampler(n=12, batch_size=4, seed=3)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert [resumed.next().tolist() for _ in range(5)] == [s.next().tolist() for _ in range(5)]


@pytest.mark.parametrize("options, message", [({"hard_share": 0.7, "easy_share": 0.5}, "hard_share \\+ easy_share must be <= 1"),
                                              ({"pool": 0.0}, r"pool: must be in \(0, 1\]"),
                                              ({"hard_share": 1.5}, r"hard_share: must be in \[0, 1\]")])
def test_options_are_checked(tiny_base, options, message):
    with pytest.raises(ConfigError, match=r"train\.sampler.*" + message):
        resolve(tiny_base, {"train.sampler": {"name": "balanced", **options}})
