"""Retrieval metrics with several positives per query, pessimistic ties, chunked scoring.

A gallery item is a positive of a query when their ids are equal. Scores are fp32 cosine
(dot products of the given embeddings). Ties are pessimistic: a negative scoring equal to a
positive ranks ahead of it, so a collapsed embedding gets the worst possible ranks.

Ranks come from counting, not sorting: the j-th best positive of a query ranks at
j + (number of negatives scoring >= it). With few positives per query that is a handful of
compare-and-sum passes over a (chunk × gallery) block, far cheaper than a sort; many positives
switch to a stable sort. Memory stays O(chunk × gallery), never the full score matrix.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xmbench.config import MODALITY_LETTER
from xmbench.models import capabilities
from xmbench.models.model import to_device

COUNTING_MAX_POSITIVES = 32  # above this, sorting a row beats one counting pass per positive
RANKING_BLOCK_SCORES = 256 * 1024  # CPU: rows ranked at once hold ~1 MiB of scores: the passes stay in cache
TIE_POLICY = "pessimistic"
LETTER_MODALITY = {v: k for k, v in MODALITY_LETTER.items()}


@dataclass
class QueryRanks:
    """Per-query results: kept for paired statistics over queries."""

    first_rank: np.ndarray  # rank of the best positive (1 = top)
    average_precision: np.ndarray
    average_precision_at_10: np.ndarray
    positives: np.ndarray
    n_gallery: int


def rank_queries(query_emb, gallery_emb, query_ids, gallery_ids, chunk_size: int = 1024, score=None) -> QueryRanks:
    """Rank every positive of every query against the gallery; see the module docstring.

    `score(queries, gallery) -> (n_queries, n_gallery)` replaces the dot product for models that
    score pairs themselves; their encoded rows may then have any shape.
    """
    queries = torch.as_tensor(query_emb).float()
    gallery = torch.as_tensor(gallery_emb).float()
    if score is None and (queries.ndim != 2 or gallery.ndim != 2 or queries.shape[1] != gallery.shape[1]):
        raise ValueError(f"embeddings must be (n, d) with equal d, got {tuple(queries.shape)} and {tuple(gallery.shape)}")
    query_ids, gallery_ids = as_ids(query_ids), as_ids(gallery_ids)
    _check_rows(len(queries), len(gallery), query_ids, gallery_ids)
    if not (torch.isfinite(queries).all() and torch.isfinite(gallery).all()):
        raise ValueError("embeddings contain NaN or infinite values")
    if score is None:
        chunks = ((start, queries[start:start + chunk_size] @ gallery.T) for start in range(0, len(queries), chunk_size))
    else:
        chunks = ((start, _finite(score(queries[start:start + chunk_size], gallery).float(), start))
                  for start in range(0, len(queries), chunk_size))
    return _rank_score_chunks(chunks, query_ids, gallery_ids, len(gallery))


def as_ids(ids) -> list:
    """Ids as a list of plain values: lists, tuples, numpy arrays and torch tensors alike.

    (A tensor's elements hash by identity, so equal ids given as a tensor would never match.)
    """
    if isinstance(ids, (torch.Tensor, np.ndarray)):
        return ids.tolist()
    return list(ids)


def rank_scores(scores, query_ids, gallery_ids, chunk_size: int = 1024) -> QueryRanks:
    """As rank_queries, from a precomputed (n_queries, n_gallery) score matrix (cast to fp32)."""
    scores = torch.as_tensor(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be (n_queries, n_gallery), got {tuple(scores.shape)}")
    query_ids, gallery_ids = as_ids(query_ids), as_ids(gallery_ids)
    _check_rows(*scores.shape, query_ids, gallery_ids)
    chunks = ((start, _finite(scores[start:start + chunk_size].float(), start))
              for start in range(0, len(scores), chunk_size))
    return _rank_score_chunks(chunks, query_ids, gallery_ids, scores.shape[1])


def _finite(scores: torch.Tensor, first_row: int) -> torch.Tensor:
    """The block unchanged; an error naming the first bad row if any score is NaN or infinite."""
    if not torch.isfinite(scores.sum()):  # a finite sum proves every term finite, at 1/20 the cost
        bad = (~torch.isfinite(scores)).any(1).nonzero().flatten()
        if len(bad):
            raise ValueError(f"scores contain NaN or infinite values (first: query row {first_row + int(bad[0])})")
    return scores


def _check_rows(n_queries: int, n_gallery: int, query_ids, gallery_ids) -> None:
    if len(query_ids) != n_queries or len(gallery_ids) != n_gallery:
        raise ValueError(f"one id per row is required: {n_queries} queries with {len(query_ids)} ids, "
                         f"{n_gallery} gallery rows with {len(gallery_ids)} ids")


@torch.inference_mode()  # the chunks are computed here, as they are consumed: never tracked by autograd
def _rank_score_chunks(chunks, query_ids, gallery_ids, n_gallery: int) -> QueryRanks:
    """Ranks, AP and AP@10 of each query from (first row, score block) chunks in row order.

    Ranking runs on the device the scores are on; on a GPU a whole chunk is one block (the
    CPU's cache-sized blocks would only multiply kernel launches there).
    """
    positive_index, n_pos = _positive_index(query_ids, gallery_ids)
    first, ap, ap10 = [], [], []
    rank = _ranks_by_counting if positive_index.shape[1] <= COUNTING_MAX_POSITIVES else _ranks_by_sorting
    for chunk_start, chunk in chunks:
        device = chunk.device
        block = len(chunk) if device.type != "cpu" else max(16, RANKING_BLOCK_SCORES // max(n_gallery, 1))
        for offset in range(0, len(chunk), block):
            start, scores = chunk_start + offset, chunk[offset:offset + block]
            rows = slice(start, start + len(scores))
            ranks = rank(scores, positive_index[rows].to(device))
            block_ap, block_ap10 = _average_precisions(ranks, n_pos[rows].to(device))
            first.append(ranks[:, 0].cpu())
            ap.append(block_ap.cpu())
            ap10.append(block_ap10.cpu())
    return QueryRanks(torch.cat(first).numpy(), torch.cat(ap).numpy(), torch.cat(ap10).numpy(), n_pos.numpy(), n_gallery)


def _positive_index(query_ids, gallery_ids) -> tuple[torch.Tensor, torch.Tensor]:
    """(n_queries, max positives) gallery rows of each query's positives, -1 padded."""
    codes: dict = {}
    gallery_codes = torch.tensor([codes.setdefault(i, len(codes)) for i in gallery_ids], dtype=torch.long)
    query_codes = torch.tensor([codes.get(i, -1) for i in query_ids], dtype=torch.long)
    missing = (query_codes < 0).nonzero().flatten()
    if len(missing):
        raise ValueError(f"{len(missing)} queries have no positive in the gallery "
                         f"(first: row {int(missing[0])}, id {query_ids[int(missing[0])]!r})")
    order = torch.argsort(gallery_codes, stable=True)
    counts = torch.bincount(gallery_codes, minlength=len(codes))
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)[:-1]])
    n_pos = counts[query_codes]
    slots = torch.arange(int(n_pos.max()))
    valid = slots < n_pos[:, None]
    index = order[(offsets[query_codes][:, None] + slots).clamp(max=len(order) - 1)]
    return torch.where(valid, index, -1), n_pos


def _ranks_by_counting(scores: torch.Tensor, positive_index: torch.Tensor) -> torch.Tensor:
    """(chunk, P) 1-based ranks of the positives sorted best first; padding gets 0."""
    valid = positive_index >= 0
    pos_scores = scores.gather(1, positive_index.clamp(min=0)).masked_fill(~valid, -torch.inf)
    pos_scores, _ = pos_scores.sort(dim=1, descending=True)
    # int32 counts: summing bools into int64 costs a fifth more and a gallery is far below 2**31
    at_least = torch.stack([torch.sum(scores >= pos_scores[:, j:j + 1], dim=1, dtype=torch.int32)
                            for j in range(pos_scores.shape[1])], 1).long()
    positives_at_least = (pos_scores.unsqueeze(1) >= pos_scores.unsqueeze(2)).sum(2)
    negatives_at_least = at_least - positives_at_least
    ranks = torch.arange(1, pos_scores.shape[1] + 1, device=scores.device) + negatives_at_least
    return ranks.masked_fill(~valid.sort(dim=1, descending=True).values, 0)


def _ranks_by_sorting(scores: torch.Tensor, positive_index: torch.Tensor) -> torch.Tensor:
    """Same result as counting: negatives first, then a stable sort by score puts them ahead on ties."""
    valid = positive_index >= 0
    is_pos = torch.zeros_like(scores, dtype=torch.bool)  # on the scores' device
    rows, slots = valid.nonzero(as_tuple=True)
    is_pos[rows, positive_index[rows, slots]] = True
    negatives_first = torch.argsort(is_pos.to(torch.int8), dim=1, stable=True)
    by_score = torch.argsort(scores.gather(1, negatives_first), dim=1, descending=True, stable=True)
    ranked_is_pos = is_pos.gather(1, negatives_first.gather(1, by_score))
    positions = torch.arange(1, scores.shape[1] + 1, device=scores.device).expand_as(scores)
    ranks = torch.where(ranked_is_pos, positions, scores.shape[1] + 1).sort(dim=1).values[:, :positive_index.shape[1]]
    return ranks.masked_fill(ranks > scores.shape[1], 0)


def _average_precisions(ranks: torch.Tensor, n_pos: torch.Tensor, cutoff: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """AP over the full ranking, and AP@cutoff normalised by min(positives, cutoff)."""
    valid = ranks > 0
    precision = torch.arange(1, ranks.shape[1] + 1, device=ranks.device) / ranks.clamp(min=1).double()
    precision = precision.masked_fill(~valid, 0.0)
    ap = precision.sum(1) / n_pos
    ap_at = precision.masked_fill(ranks > cutoff, 0.0).sum(1) / n_pos.clamp(max=cutoff)
    return ap, ap_at


def summarize(ranks: QueryRanks, ks=(1, 5, 10)) -> dict[str, float | int | str]:
    """The flat metric dict of one direction, with what is needed to read it."""
    first = ranks.first_rank.astype(np.float64)
    metrics: dict[str, float | int | str] = {f"R@{k}": float(np.mean(first <= k)) for k in ks}
    metrics.update({
        "mAP": float(np.mean(ranks.average_precision)),
        "mAP@10": float(np.mean(ranks.average_precision_at_10)),
        "MRR": float(np.mean(1.0 / first)),
        "median_rank": float(np.median(first)),
        "mean_rank": float(np.mean(first)),
        "n_queries": int(len(first)),
        "n_gallery": int(ranks.n_gallery),
        "positives_per_query": float(np.mean(ranks.positives)),
        "tie_policy": TIE_POLICY,
        "score_dtype": "float32",
    })
    return metrics


def evaluate_retrieval(query_emb, gallery_emb, query_ids, gallery_ids, ks=(1, 5, 10),
                       chunk_size: int = 1024) -> dict[str, float | int | str]:
    """Retrieval metrics for any embeddings.

    Args:
        query_emb: (n_queries, d) array or tensor; scores are dot products in fp32, so pass
            L2-normalised embeddings for cosine similarity.
        gallery_emb: (n_gallery, d).
        query_ids, gallery_ids: sequences of hashable ids; equal ids are positives.
        ks: cut-offs of R@k (hit rate: a positive within the top k).
        chunk_size: queries scored at once; peak memory is about chunk_size × n_gallery × 4 bytes.

    Returns:
        R@k, mAP, mAP@10, MRR, median_rank and mean_rank of the first positive, and n_queries,
        n_gallery, positives_per_query, tie_policy and score_dtype.
    """
    return summarize(rank_queries(query_emb, gallery_emb, query_ids, gallery_ids, chunk_size), ks)


def evaluate_scores(scores, query_ids, gallery_ids, ks=(1, 5, 10), chunk_size: int = 1024) -> dict[str, float | int | str]:
    """evaluate_retrieval from a precomputed (n_queries, n_gallery) score matrix (higher is better).

    For a model whose similarity is not a dot product (a re-ranker, a fused score); the same
    metrics, tie policy and chunked processing. Scores are cast to fp32.
    """
    return summarize(rank_scores(scores, query_ids, gallery_ids, chunk_size), ks)


def encode_split(model, split, modality: str, batch_size: int = 64) -> torch.Tensor:
    """Embeddings of every row of one modality of an EncodedSplit, in eval mode."""
    return encode_split_states(model, split, modality, batch_size)[0]


@torch.inference_mode()
def encode_split_states(model, split, modality: str, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(embeddings, states) of every row of one modality, in eval mode: states for a model that reads them
    (`capabilities.has_states`: fusion before projection), else None; the model run once per row."""
    was_training = capabilities.set_training(model, False)
    try:
        order, device = split.length_order(modality), capabilities.device_of(model)
        batches, states = [], []
        for i in range(0, len(order), batch_size):
            inputs = to_device(split.rows(modality, order[i:i + batch_size]), device)
            batch, state = capabilities.encode_states(model, modality, inputs)
            capabilities.check_finite(modality, batch, first_row=i)
            batches.append(batch)
            if state is not None:
                states.append(state.float())
        # kept on the model's device: evaluation ranks there, and the loss of validation computes there
        back = torch.argsort(order).to(device)  # back to row order
        return torch.cat(batches).float()[back], (torch.cat(states)[back] if states else None)
    finally:
        if was_training:
            capabilities.set_training(model, True)


def evaluate_model(model, split, directions, ks=(1, 5, 10), chunk_size: int = 1024,
                   batch_size: int = 64) -> tuple[dict, dict[str, QueryRanks], dict[str, torch.Tensor]]:
    """Encode the split with the model, then evaluate every direction both sides support.

    Returns (metrics, per-query ranks, the embeddings of each modality) — the embeddings serve
    the alignment analysis and the latency probes' galleries without encoding twice.
    """
    embeddings, states = encode_for_directions(model, split, directions, batch_size)
    return (*evaluate_embeddings(embeddings, split, directions, ks, chunk_size, model, states), embeddings)


def encode_for_directions(model, split, directions, batch_size: int = 64) -> tuple[dict, dict | None]:
    """({modality: embeddings}, {modality: states} or None) of every modality that a direction both the split and
    the model support uses: what `evaluate_embeddings` ranks."""
    directions = supported_directions(directions, set(split.modalities) & set(model.modalities))
    modalities = {x for d in directions for x in direction_modalities(d)}
    return capabilities.embeddings_and_states({m: encode_split_states(model, split, m, batch_size) for m in modalities})


def evaluate_embeddings(embeddings: dict[str, torch.Tensor], split, directions, ks=(1, 5, 10),
                        chunk_size: int = 1024, model=None, states: dict | None = None) -> tuple[dict, dict[str, QueryRanks]]:
    """Every direction (query→gallery, e.g. t2i) over precomputed embeddings of a split.

    A `model` that scores pairs itself (capability `score`) ranks by its scores, others by dot products;
    `states` (modality → the rows' states) go to a model that reads them (fusion before projection).
    Returns ({direction: metrics, "rsum": R@k summed over directions in percentage points},
    {direction: QueryRanks}).
    """
    metrics: dict = {}
    per_query = {}
    scorer = model is not None and capabilities.can_score(model)
    for direction in supported_directions(directions, set(embeddings)):
        q, g = direction_modalities(direction)
        pair_states = (states[q], states[g]) if states else None
        scores = None
        if model is not None and capabilities.reranks(model):  # the first stage's top-k re-scored by the model
            from xmbench.eval.rerank import reranked_scores

            scores = reranked_scores(model, q, embeddings[q], g, embeddings[g], chunk_size, pair_states)
        elif pair_states:  # scores that read the rows' states: every query at once, its states beside it
            scores = capabilities.similarity(model, q, embeddings[q], g, embeddings[g], pair_states)
        if scores is not None:
            per_query[direction] = rank_scores(scores, split.row_ids(q), split.row_ids(g), chunk_size)
            metrics[direction] = summarize(per_query[direction], ks)
            continue
        score = (lambda a, b, q=q, g=g: capabilities.similarity(model, q, a, g, b)) if scorer else None
        per_query[direction] = rank_queries(embeddings[q], embeddings[g], split.row_ids(q), split.row_ids(g), chunk_size,
                                            score)
        metrics[direction] = summarize(per_query[direction], ks)
    metrics["rsum"] = 100.0 * sum(m[f"R@{k}"] for m in metrics.values() for k in ks)
    return metrics, per_query


def supported_directions(directions, modalities) -> list[str]:
    """The requested directions whose query and gallery modalities are both present."""
    return [d for d in directions if set(direction_modalities(d)) <= set(modalities)]


def direction_modalities(direction: str) -> tuple[str, str]:
    """'t2i' → ('text', 'image'): the query and gallery modalities of a direction."""
    return LETTER_MODALITY[direction[0]], LETTER_MODALITY[direction[2]]
