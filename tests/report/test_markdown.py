"""The markdown report's suite run time: the sum of the runs' own wall times, said when some are missing."""
from xmbench.bench.record import Record
from xmbench.report.markdown import suite_run_time


def run(seed, status="ok", wall=None):
    costs = {} if wall is None else {"run_wall_s": wall}
    return Record(suite="s", variant="v", variant_id="v", seed=seed, status=status, config={}, costs=costs)


def test_the_run_time_sums_the_runs_and_says_what_it_left_out():
    assert suite_run_time([run(0, wall=90.0), run(1, wall=150.0)]).startswith("Run time: 4.0 min for 2 runs")
    partial = suite_run_time([run(0, wall=60.0), run(1), run(2, status="failed", wall=None)])
    assert partial.startswith("Run time: 1.0 min for 1 run,") and "(1 more run recorded no run time)" in partial
    assert suite_run_time([run(0), run(1)]) == ""
