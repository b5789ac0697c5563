"""The machine reference: a fixed workload timed beside the query path, to tell a slower model from a slower machine.

On a shared or virtual machine a whole process can run 10-30% slower than the one before it
(measured here: the A/A runs of benchmarks/gate_validation.py, every step and query slower than
the baseline's process by ×1.1-1.3). A timing gate that compares raw seconds across processes
then fails on the machine, not on the code. Each run therefore times this reference interleaved
with its query path, sample for sample, so both see the same interference; comparisons divide
each process's timing by its reference (xmbench.bench.compare).

The workload is numpy (its own BLAS) and a Python loop, never torch: a torch or model regression
must not slow the reference too and so be divided away.
"""
from __future__ import annotations

import numpy as np

NAME = "machine_ref_s"  # the record's timing that holds the reference's samples

_rng = np.random.default_rng(0)
# 16×128 by 128×128: at most 262,144 multiply-adds a product, under OpenBLAS's threshold for
# threading, so the reference runs on one thread and leaves no spinning BLAS worker behind it.
_X = _rng.standard_normal((16, 128), dtype=np.float32)
_W = _rng.standard_normal((128, 128), dtype=np.float32)


def reference_workload() -> float:
    """A fraction of a millisecond of what a small encoder does: matrix products, elementwise work,
    and interpreter overhead."""
    x = _X
    for _ in range(8):
        x = np.tanh(x @ _W * 0.1)
    total = 0.0
    for value in x[0]:  # the interpreter's share, as in a model's Python-side dispatch
        total += float(value)
    return total
