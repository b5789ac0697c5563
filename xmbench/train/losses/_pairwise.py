"""What the pairwise losses share: each direction's query rows, positives by item id, per-item losses.

A pair (a, b) is taken both ways: a-rows query the b-rows and b-rows query the a-rows. On
several ranks with the local loss (`LossInput.local_rows`) the queries are this rank's rows of
the global batch and the gallery is the whole global batch, as in infonce.
"""
from __future__ import annotations

from xmbench.lazy import torch


def query_rows(inputs):
    """The query rows of a direction: this rank's slice, or every row (None)."""
    return inputs.local_rows


def positives(inputs, query: str, gallery: str, rows=None):
    """(queries, gallery rows) bool: True where the two rows hold the same item (equal item ids)."""
    ids = inputs.item_ids[query] if rows is None else inputs.item_ids[query][rows]
    return ids[:, None] == inputs.item_ids[gallery][None, :].to(ids.device)


def directions(inputs, a: str, b: str):
    """[(logits, positives, query modality), …] of a→b and b→a; the b→a logits of all rows are a→b's transpose."""
    rows = query_rows(inputs)
    if rows is None:
        logits = inputs.logits(a, b)
        mask = positives(inputs, a, b)
        return [(logits, mask, a), (logits.T, mask.T, b)]
    return [(inputs.logits(a, b, rows), positives(inputs, a, b, rows), a),
            (inputs.logits(b, a, rows), positives(inputs, b, a, rows), b)]


def targets(inputs, logits):
    """The column of each query's own row (row i of the a-rows is row i of the b-rows), as in infonce."""
    rows = query_rows(inputs)
    start = 0 if rows is None else rows.start
    return torch.arange(start, start + len(logits), device=logits.device)


def mean_per_item(per_direction: list):
    """Each row's loss averaged over both directions of every pair; None when rows do not line up.

    The engine's batches hold one row per item in every modality, so row i of each direction's
    queries is the same batch row; a loss given unequal row counts returns no per-item losses.
    """
    if not per_direction or len({len(x) for x in per_direction}) != 1:
        return None
    return torch.stack([x.detach() for x in per_direction]).mean(0)
