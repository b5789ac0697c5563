import math

import numpy as np
import pytest

from xmbench.bench.stats import mann_whitney_u, mean_interval, paired_bootstrap, permutation_test


def test_mean_interval_uses_student_t():
    mean, low, high = mean_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and high - mean == pytest.approx(4.303 * 1.0 / math.sqrt(3))
    assert mean_interval([5.0]) == (5.0, 5.0, 5.0)


def test_mann_whitney_matches_a_hand_computation():
    # U = 0 for complete separation of 3 vs 3: z = (4.5 - 0.5) / sqrt(3*3*7/12), p = erfc(z / sqrt 2)
    expected = math.erfc((4.5 - 0.5) / math.sqrt(9 * 7 / 12) / math.sqrt(2))
    assert mann_whitney_u([1, 2, 3], [4, 5, 6]) == pytest.approx(expected)
    assert mann_whitney_u([1, 2, 3], [1, 2, 3]) == 1.0
    assert mann_whitney_u([], [1.0]) == 1.0


def test_permutation_test_is_exact_for_small_groups():
    assert permutation_test([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == pytest.approx(2 / math.comb(10, 5))
    assert permutation_test([1, 2, 3], [1, 2, 3]) == 1.0


def test_paired_bootstrap_is_deterministic_and_brackets_the_mean():
    d = np.random.default_rng(0).normal(0.3, 1.0, 500)
    low, high = paired_bootstrap(d)
    assert (low, high) == paired_bootstrap(d)
    assert low < d.mean() < high and low > 0
    assert paired_bootstrap(np.zeros(50)) == (0.0, 0.0)


def test_one_sided_alternatives():
    assert permutation_test([6, 7, 8, 9, 10], [1, 2, 3, 4, 5], alternative="greater") == pytest.approx(1 / math.comb(10, 5))
    assert permutation_test([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], alternative="greater") == 1.0
    two_sided = mann_whitney_u([4, 5, 6, 7], [1, 2, 3, 3.5])
    assert mann_whitney_u([4, 5, 6, 7], [1, 2, 3, 3.5], alternative="greater") == pytest.approx(two_sided / 2)
    assert mann_whitney_u([1, 2, 3, 3.5], [4, 5, 6, 7], alternative="greater") > 0.9

