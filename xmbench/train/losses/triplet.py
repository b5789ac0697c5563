"""Triplet loss with a margin on cosine similarities, in-batch mining, per pair and both directions.

For a pair (a, b) and each direction (a-rows query the b-rows, then the reverse), with
S_ij = cos(q_i, g_j) (no logit scale: the margin is in cosine units), positives P(i) the
gallery rows with query i's item and negatives N(i) the others:

- batch_hard (Hermans et al. 2017): the hardest positive and the hardest negative,
  ℓ_i = max(0, m − min_{p∈P(i)} S_ip + max_{n∈N(i)} S_in);
- semi_hard (Schroff et al. 2015, FaceNet): for each positive p, the most similar negative that
  is still less similar than p, n* = argmax {S_in : n ∈ N(i), S_in < S_ip}; when there is none,
  the least similar negative (TensorFlow Addons' rule); ℓ_i = mean_{p∈P(i)} max(0, m − S_ip + S_in*).

A direction's value is the mean of ℓ_i over the queries that have a positive and a negative;
the pair's part is the mean of the two directions. `per_item`: ℓ of each row averaged over both
directions and every pair (0 for a query without a positive or a negative). A model that scores
pairs itself (`score`) gives S unnormalised.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from xmbench.lazy import F, torch
from xmbench.registry import LOSSES
from xmbench.schema import NON_NEGATIVE
from xmbench.train.losses._pairwise import mean_per_item, positives


@dataclass(frozen=True)
class TripletOptions:
    """Attributes:
    margin: the cosine-similarity gap a positive must keep over the mined negative.
    mining: batch_hard (hardest positive and hardest negative of each query) or semi_hard (FaceNet).
    """

    margin: Annotated[float, NON_NEGATIVE] = 0.2
    mining: Literal["batch_hard", "semi_hard"] = "batch_hard"


def cosine(inputs, query: str, gallery: str, rows=None):
    """(queries, gallery rows) cosine similarities (the model's own score, when it scores pairs)."""
    from xmbench.models import capabilities

    if capabilities.can_score(inputs.model):
        return inputs.similarity(query, gallery, rows)
    q = inputs.embeddings[query] if rows is None else inputs.embeddings[query][rows]
    return F.normalize(q, dim=-1) @ F.normalize(inputs.embeddings[gallery], dim=-1).T


def batch_hard(similarity, positive, margin: float):
    """(queries,) ℓ and which queries count (a positive and a negative)."""
    negative = ~positive
    valid = positive.any(1) & negative.any(1)
    inf = torch.full_like(similarity, float("inf"))
    hardest_positive = torch.where(positive, similarity, inf).min(1).values
    hardest_negative = torch.where(negative, similarity, -inf).max(1).values
    loss = torch.where(valid, F.relu(margin - hardest_positive + hardest_negative), torch.zeros_like(hardest_positive))
    return loss, valid


def semi_hard(similarity, positive, margin: float):
    """(queries,) ℓ (mean over each query's positives) and which queries count."""
    negative = ~positive
    valid = positive.any(1) & negative.any(1)
    count = positive.sum(1)
    k = max(int(count.max()), 1)
    # each query's positives (up to the most any query has), as (queries, k) similarities and a mask
    order = torch.sort(positive.to(torch.int8), dim=1, descending=True, stable=True).indices[:, :k]
    s_pos = similarity.gather(1, order)
    is_pos = positive.gather(1, order)
    s_neg = similarity[:, None, :]  # (queries, 1, gallery)
    semi = negative[:, None, :] & (s_neg < s_pos[:, :, None])  # (queries, k, gallery)
    inf = torch.full_like(semi, float("inf"), dtype=similarity.dtype)
    hardest_semi = torch.where(semi, s_neg.expand_as(semi), -inf).max(2).values
    easiest = torch.where(negative, similarity, torch.full_like(similarity, float("inf"))).min(1).values
    chosen = torch.where(semi.any(2), hardest_semi, easiest[:, None].expand_as(hardest_semi))
    per_positive = F.relu(margin - s_pos + chosen)
    use = is_pos & valid[:, None]
    per_positive = torch.where(use, per_positive, torch.zeros_like(per_positive))
    return per_positive.sum(1) / count.clamp(min=1), valid


@LOSSES.register("triplet", TripletOptions)
def triplet(inputs, options: TripletOptions):
    """Triplet loss with a margin on cosine similarities, batch-hard or semi-hard in-batch mining, both directions."""
    from xmbench.train.step import LossOutput

    mine = batch_hard if options.mining == "batch_hard" else semi_hard
    rows = inputs.local_rows
    parts, per_item = {}, []
    for a, b in inputs.pairs:
        means = []
        for query, gallery in ((a, b), (b, a)):
            loss, valid = mine(cosine(inputs, query, gallery, rows), positives(inputs, query, gallery, rows),
                               options.margin)
            means.append(loss.sum() / valid.sum().clamp(min=1))
            if rows is None:
                per_item.append(loss)
        parts[f"{a}-{b}"] = (means[0] + means[1]) / 2
    return LossOutput(parts, mean_per_item(per_item))
