"""Executors: where a suite's jobs run. Each is `execute(jobs, started) -> iterator of (job, record, seconds)`,
calling `started(job)` when a job begins and yielding each job's record as it finishes.

- local (default): one job at a time, each in its own isolated process (or in this process).
- pool: N isolated jobs at once on this machine, each with its share of the CPU threads and its own GPU.
- ray: jobs as Ray tasks on a cluster (an optional extra: `pip install -e '.[ray]'`).
"""
