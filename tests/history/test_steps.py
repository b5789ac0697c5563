"""Segmentation on synthetic series: exact change points under fixed seeds, none in A/A series."""
import numpy as np
import pytest

from xmbench.history.steps import head_regressions, noise_scale, segment


@pytest.mark.parametrize("seed", range(5))
def test_one_step_is_found_at_its_index(seed):
    rng = np.random.default_rng(seed)
    values = np.r_[rng.normal(50, 1, 7), rng.normal(44, 1, 5)]  # 6σ down from index 7 on
    assert segment(values) == [7]


def test_two_steps_and_an_outlier_that_is_not_a_step():
    rng = np.random.default_rng(1)
    values = np.r_[rng.normal(0, 1, 10), rng.normal(8, 1, 10), rng.normal(2, 1, 10)]
    values[4] += 6  # one wild commit: the L1 cost pays its distance once, not a segment
    assert segment(values) == [10, 20]


def test_aa_series_have_no_step():
    rng = np.random.default_rng(0)
    found = sum(bool(segment(rng.normal(0, 1, n))) for n in (12, 30) for _ in range(50))
    assert found <= 2  # measured 2/400 at n=12 and 0/400 at n=40 over more seeds (PENALTY_SIGMAS = 3)


def test_constant_series_and_deterministic_jumps():
    assert segment([3.0] * 12) == []
    assert noise_scale([3.0] * 12) == 0.0
    assert segment([5.0] * 6 + [7.0] * 6) == [6]  # a deterministic cost changes exactly where it changed
    assert segment([1.0]) == []


def test_head_regressions_are_the_last_judged_step_of_each_series():
    from xmbench.history.steps import Step

    def step(index, verdict):
        return Step("a", "t2i R@1", f"c{index}", "", index, 1.0, 0.0, verdict, None, "")

    assert head_regressions([step(3, "regression"), step(8, "improvement")]) == []
    assert [s.index for s in head_regressions([step(3, "improvement"), step(8, "regression"),
                                               step(9, "not significant")])] == [8]
