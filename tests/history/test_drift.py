"""Judging steps with compare's statistics on synthetic entries: a drift that no single step shows."""
import numpy as np

from xmbench.bench.gate import parse_gates
from xmbench.bench.record import Record
from xmbench.history import steps
from xmbench.history.store import Commit, make_entries

N_QUERIES = 200
RULES = parse_gates({"*.R@1": 2.0})


def entry(i: int, misses: int):
    """A commit whose t2i ranking loses its first `misses` of 60 top-1 hits to rank 3."""
    first_rank = np.full(N_QUERIES, 20)
    first_rank[:60] = 1
    first_rank[:misses] = 3
    metrics = {"R@1": float(np.mean(first_rank <= 1)), "R@5": float(np.mean(first_rank <= 5)),
               "R@10": float(np.mean(first_rank <= 10)), "mAP": float(np.mean(1 / first_rank))}
    record = Record("s", "a", "id", 0, "ok", {}, metrics={"t2i": metrics},
                    per_query={"t2i": {"first_rank": first_rank.tolist(), "ap": (1 / first_rank).tolist()}})
    return make_entries([record], Commit(f"{i:040x}", f"2024-01-{i + 1:02d}", f"commit {i}"), "box", False)[0]


def test_one_big_step_is_a_regression_at_its_commit():
    history = [entry(i, 0) for i in range(6)] + [entry(i, 12) for i in range(6, 10)]  # −6 points from commit 6
    found = [s for s in steps.detect(history, "t2i R@1", RULES) if s.judged]
    assert [(s.index, s.verdict, round(s.size, 1)) for s in found] == [(6, "regression", -6.0)]
    assert found[0].interval[1] < 0


def test_small_steps_stay_under_the_threshold_but_their_drift_is_caught():
    history = [entry(i, 3 * (i // 4)) for i in range(12)]  # −1.5 points at commits 4 and 8
    found = steps.detect(history, "t2i R@1", RULES)
    assert [s.index for s in found] == [4, 8] and not any(s.judged for s in found)
    drift = steps.drift(history, "t2i R@1", RULES)
    assert drift is not None and drift.index == 4 and round(drift.size, 1) == -3.0 and "drift" in drift.note


def test_an_aa_history_of_identical_runs_has_no_step():
    history = [entry(i, 0) for i in range(12)]
    assert steps.detect(history, "t2i R@1", RULES) == [] and steps.drift(history, "t2i R@1", RULES) is None
