"""Timing a callable: warmup, then repetitions until a minimum count and a minimum time.

CUDA work is timed with CUDA events after a synchronisation; CPU work with perf_counter.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import torch

from xmbench.profile.measurement import Measurement


def time_callable(fn: Callable[[], object], *, warmup: int = 3, min_count: int = 10, min_time_s: float = 0.5,
                  max_count: int = 10_000, cuda: bool | None = None) -> Measurement:
    """Seconds per call of `fn`, every repetition kept as a raw sample."""
    cuda = torch.cuda.is_available() if cuda is None else cuda
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < max_count and (len(samples) < min_count or time.perf_counter() - started < min_time_s):
        samples.append(_cuda_seconds(fn) if cuda else _cpu_seconds(fn))
    return Measurement("s", samples)


def _cpu_seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _cuda_seconds(fn: Callable[[], object]) -> float:
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    begin.record()
    fn()
    end.record()
    end.synchronize()
    return begin.elapsed_time(end) / 1000.0


def query_path(model, query_inputs: dict[str, torch.Tensor], query_modality: str, gallery: torch.Tensor,
               k: int = 10) -> Callable[[], torch.Tensor]:
    """The online retrieval path: encode the query, score it against a pre-encoded gallery, top-k."""

    @torch.inference_mode()
    def run() -> torch.Tensor:
        query = model.encode(query_modality, query_inputs)
        return (query @ gallery.T).topk(min(k, len(gallery)), dim=1).indices

    return run
