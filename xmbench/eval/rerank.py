"""Two-stage retrieval: the bi-encoder's dot products, then the model's re-scores of each query's top k.

For a model that re-ranks (`capabilities.reranks`: `rerank(q_modality, queries, g_modality,
candidates) -> (n, k)` and a truthy `rerank_k`), `reranked_scores` returns an (n_queries,
n_gallery) score matrix whose ranking is the two-stage ranking:

1. first stage: s = Q·Gᵀ (the encoded rows' dot products), per chunk of `chunk_size` queries;
2. each query's k = min(rerank_k, n_gallery) best rows by s (`topk`; ties at the k-th place
   broken as torch's topk breaks them) are re-scored by the model, r = model.rerank(…, G[top]);
3. those k rows get r + c, the others keep s, with c ≥ 0 per query the least shift putting every
   re-scored row strictly above every other row: c = max(0, max(s of the others) − min r), and any
   value that rounding left at or below that maximum is raised to the next float above it.

So the re-scored rows come first, in the order of their re-scores (ties kept as ties), and the
other rows follow in the first stage's order (their scores untouched). When the re-scores already
clear the rest, c = 0 and they are the model's raw scores. (Re-scores closer than a float's
resolution at the shifted magnitude may round to a tie: ties rank pessimistically.)

A model with states (fusion before projection) gets each candidate's states gathered beside its
embedding: `rerank(..., states=(the queries' states, the candidates' states))`.

Memory: besides the returned (n_queries × n_gallery) matrix, which the evaluator ranks, a few
(chunk × n_gallery) blocks for the chunk being placed, and the candidates' embeddings and the
model's working set for at most PAIR_BUDGET query–candidate pairs at once (`rerank` is called
on sub-chunks of a chunk's rows). Runs without autograd (inference mode).
"""
from __future__ import annotations

import torch

PAIR_BUDGET = 16384  # query–candidate pairs handed to model.rerank at once


@torch.inference_mode()
def reranked_scores(model, query_modality: str, queries: torch.Tensor, gallery_modality: str, gallery: torch.Tensor,
                    chunk_size: int = 1024, states: tuple | None = None) -> torch.Tensor:
    """(n_queries, n_gallery) scores: each query's first-stage top-k re-scored by the model, placed above the rest.
    `states` (the queries' and the gallery's rows' states) for a model that reads them (`encode_states`)."""
    queries, gallery = queries.float(), gallery.float()
    query_states, gallery_states = states or (None, None)
    n_gallery = len(gallery)
    k = min(int(model.rerank_k), n_gallery)
    out = torch.empty(len(queries), n_gallery, device=queries.device)
    for start in range(0, len(queries), chunk_size):
        block = queries[start:start + chunk_size]
        first = block @ gallery.T
        top = first.topk(k, dim=1).indices if k else first.new_zeros(len(block), 0, dtype=torch.long)
        block_states = None if query_states is None else query_states[start:start + chunk_size]
        rescored = _rerank(model, query_modality, block, gallery_modality, gallery, top, block_states, gallery_states)
        out[start:start + len(block)] = place_above(first, top, rescored)
    return out


def _rerank(model, query_modality, block, gallery_modality, gallery, top, query_states=None,
            gallery_states=None) -> torch.Tensor:
    """model.rerank of each query's candidates (with their states, when given), in sub-chunks of at most PAIR_BUDGET pairs."""
    k = top.shape[1]
    if k == 0:
        return top.float()
    rows = max(1, PAIR_BUDGET // k)
    parts = []
    for i in range(0, len(block), rows):
        candidates = gallery[top[i:i + rows]]  # (rows, k, D)
        if gallery_states is None:
            scores = model.rerank(query_modality, block[i:i + rows], gallery_modality, candidates)
        else:  # the candidates' states gathered as their embeddings are
            states = (query_states[i:i + rows], gallery_states[top[i:i + rows]])
            scores = model.rerank(query_modality, block[i:i + rows], gallery_modality, candidates, states=states)
        if tuple(scores.shape) != (len(candidates), k):
            raise ValueError(f"model.rerank returned shape {tuple(scores.shape)} for {len(candidates)} queries with "
                             f"{k} candidates each; it must return ({len(candidates)}, {k}) scores")
        parts.append(scores.float())
    return torch.cat(parts)


def place_above(first: torch.Tensor, top: torch.Tensor, rescored: torch.Tensor) -> torch.Tensor:
    """First-stage scores (n, m) with the rows `top` (n, k) replaced by `rescored` (n, k), shifted above the rest."""
    out = first.clone()
    if top.shape[1] == 0:
        return out
    if top.shape[1] < first.shape[1]:
        rest = first.scatter(1, top, float("-inf")).amax(dim=1, keepdim=True)  # the best of the others
        shift = (rest - rescored.amin(dim=1, keepdim=True)).clamp(min=0)
        above = torch.nextafter(rest, torch.full_like(rest, float("inf")))
        rescored = torch.maximum(rescored + shift, above)
    return out.scatter_(1, top, rescored)
