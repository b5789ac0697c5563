"""Latency probes: timing a callable, each modality's encoder, and the online query path.

Every timing is warmup, then repetitions until both a minimum count and a minimum time are
reached, each repetition kept as a raw sample. CUDA work is timed with CUDA events after a
synchronisation; CPU work with perf_counter.
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


def time_interleaved(fn: Callable[[], object], reference: Callable[[], object], *, warmup: int = 3,
                     min_count: int = 20, min_time_s: float = 0.5, cuda: bool = False) -> tuple[Measurement, Measurement]:
    """Seconds per call of `fn` and of `reference` (on the CPU), alternating call for call so both see
    the same interference from the rest of the machine."""
    for _ in range(warmup):
        fn()
        reference()
    samples: list[float] = []
    reference_samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < min_count or time.perf_counter() - started < min_time_s:
        samples.append(_cuda_seconds(fn) if cuda else _cpu_seconds(fn))
        reference_samples.append(_cpu_seconds(reference))
    return Measurement("s", samples), Measurement("s", reference_samples)


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
               k: int = 10, gallery_modality: str | None = None,
               gallery_states: torch.Tensor | None = None) -> Callable[[], torch.Tensor]:
    """The online retrieval path: encode the query, score it against a pre-encoded gallery, top-k.

    A model that re-ranks re-scores the first stage's top-k inside the path; one whose scores read
    the rows' states (fusion before projection) encodes the query's states with it and reads the
    gallery's, pre-encoded as its embeddings are (`gallery_states`)."""
    from xmbench.models.capabilities import has_states, reranks, similarity

    gallery_modality = gallery_modality or query_modality
    if has_states(model) and gallery_states is None:
        raise ValueError("query_path: this model's scores read the rows' states; pass the gallery's (gallery_states)")

    @torch.inference_mode()
    def run() -> torch.Tensor:
        states = None
        if gallery_states is None:
            query = model.encode(query_modality, query_inputs)
        else:
            query, query_states = model.encode_states(query_modality, query_inputs)
            states = (query_states, gallery_states)
        if reranks(model):  # the first stage's top-k re-scored by the model: part of the online path
            from xmbench.eval.rerank import reranked_scores

            scores = reranked_scores(model, query_modality, query, gallery_modality, gallery, states=states)
        else:
            scores = similarity(model, query_modality, query, gallery_modality, gallery, states)
        return scores.topk(min(k, len(gallery)), dim=1).indices

    return run


def cycled_rows(n_available: int, batch_size: int) -> torch.Tensor:
    """Row numbers 0, 1, … for a batch larger than the split repeats rows (latency ignores content)."""
    return torch.arange(batch_size) % n_available


def probe_latency(model, split, directions, batch_sizes, min_count: int = 10, min_time_s: float = 0.3,
                  warmup: int = 2, galleries: dict[str, torch.Tensor] | None = None) -> dict[str, Measurement]:
    """Encoder latency of each modality, and the query path of each direction's query modality.

    Keys: `encode.<modality>.b<batch>` (one batch through tower and head) and
    `query.<direction>.b<batch>` (encode the batch of queries, score it against the
    pre-encoded gallery, top-10); inputs are the split's first rows, repeated when a batch is
    larger than the split. `galleries` (modality → the split's embeddings) are used when given,
    encoded here otherwise.
    """
    from xmbench.eval.retrieval import direction_modalities, encode_split_states
    from xmbench.models.capabilities import device_of, has_states
    from xmbench.models.model import to_device

    device = device_of(model)
    cuda = device.type == "cuda"
    modalities = [m for m in split.modalities if m in getattr(model, "modalities", split.modalities)]
    results: dict[str, Measurement] = {}
    galleries = {m: e.to(device) for m, e in (galleries or {}).items()}
    gallery_states: dict[str, torch.Tensor | None] = {}
    for batch_size in batch_sizes:
        for modality in modalities:
            inputs = to_device(split.rows(modality, cycled_rows(split.n_rows(modality), batch_size)), device)
            encode = torch.inference_mode()(lambda m=modality, x=inputs: model.encode(m, x))
            results[f"encode.{modality}.b{batch_size}"] = time_callable(
                encode, warmup=warmup, min_count=min_count, min_time_s=min_time_s, cuda=cuda)
        for direction in directions:
            query, gallery = direction_modalities(direction)
            if query not in modalities or gallery not in modalities:
                continue
            if gallery not in galleries or (has_states(model) and gallery not in gallery_states):
                galleries[gallery], gallery_states[gallery] = encode_split_states(model, split, gallery)
            inputs = to_device(split.rows(query, cycled_rows(split.n_rows(query), batch_size)), device)
            path = query_path(model, inputs, query, galleries[gallery], gallery_modality=gallery,
                              gallery_states=gallery_states.get(gallery))
            results[f"query.{direction}.b{batch_size}"] = time_callable(path, warmup=warmup, min_count=min_count,
                                                                        min_time_s=min_time_s, cuda=cuda)
    return results
