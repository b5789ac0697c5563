"""Results history across commits: filing runs under their commit, trends, step detection, bisection.

    store.py   entries (one small JSON per commit × variant), append-only, atomic create
    series.py  entries → per-metric series over commits, and back into Records for compare
    steps.py   penalised piecewise-constant segmentation, then compare's significance and the gate's threshold
    trend.py   the table per metric and the HTML page with one plot per metric
    bisect.py  git worktrees, runs of one variant, binary search for the first bad commit
"""
