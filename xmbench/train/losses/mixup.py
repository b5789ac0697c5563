"""Embedding MixUp with soft targets on top of symmetric InfoNCE (after Zhang et al. 2018; i-Mix, Lee et al. 2021).

For a pair (a, b) and each direction (a-rows query the b-rows, then the reverse), every query row i
is mixed with a partner row π(i) of the same modality, λ_i ~ Beta(α, α) drawn per row:

    q̃_i = λ_i q_i + (1 − λ_i) q_π(i)     (renormalised to unit length with `renormalize`)
    L̃_ij = the pair's scaled similarity of q̃_i and gallery row j (the model's `score`, else dot products)
    t_i   = λ_i e_i + (1 − λ_i) e_π(i)   (soft target over the gallery rows: row i of a is row i of b)
    m_i   = −Σ_j t_ij log softmax_j(L̃_i)

and the pair's part is (1 − weight) · InfoNCE + weight · MixUp, each the mean of its two
directions (InfoNCE exactly as the infonce loss: cross-entropy with row i's own column). π is a
uniform random permutation of the rows (a row that is its own partner is not mixed: λ does not
matter there), λ and π are drawn once per step and shared by every pair and both directions.
The draws come from numpy's Generator seeded with (seed, step): a run is reproducible, a resumed
run draws what it would have, and every rank of a distributed run draws the same global mixing
(with the local loss each rank takes its query rows of it). torch's Beta sampler takes no
generator, hence numpy.

As infonce it pairs row i of a with row i of b: both modalities need as many rows (a batch with
mix_negatives' extra rows cannot be used), and other rows of the same item (views_per_item > 1)
count as negatives. `per_item`: each row's (1 − weight) · InfoNCE + weight · MixUp loss averaged
over both directions and every pair (not on several ranks with the local loss).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated

from xmbench.lazy import F, torch
from xmbench.registry import LOSSES
from xmbench.schema import POSITIVE, Range


@dataclass(frozen=True)
class MixUpOptions:
    """Attributes:
    alpha: λ ~ Beta(alpha, alpha) per row; small alpha keeps λ near 0 or 1 (little mixing), 1 is uniform.
    weight: share of the MixUp term in each pair's part: (1 - weight) · InfoNCE + weight · MixUp.
    renormalize: rescale mixed embeddings to unit length (the towers' embeddings are unit vectors).
    seed: seeds the draws together with the step.
    """

    alpha: Annotated[float, POSITIVE] = 0.4
    weight: Annotated[float, Range(0, 1)] = 0.5
    renormalize: bool = True
    seed: int = 0


def draw(rows: int, alpha: float, seed: int, step: int):
    """(λ (rows,), partner (rows,)) of a step: numpy's Generator seeded with (seed, step)."""
    import numpy as np

    rng = np.random.default_rng([seed & 0xFFFFFFFF, step])
    lam = rng.beta(alpha, alpha, size=rows)
    partner = rng.permutation(rows)
    return torch.from_numpy(lam), torch.from_numpy(partner)


def mix(embeddings, lam, partner, renormalize: bool = True):
    """λ_i e_i + (1 − λ_i) e_π(i) for every row, optionally back to unit length."""
    weights = lam.to(embeddings.device, embeddings.dtype)[:, None]
    mixed = weights * embeddings + (1 - weights) * embeddings[partner.to(embeddings.device)]
    return F.normalize(mixed, dim=-1) if renormalize else mixed


def soft_targets(lam, partner, columns: int, rows=None):
    """(queries, columns) targets λ_i at column i and 1 − λ_i at column π(i) (λ_i + 1 − λ_i = 1 where π(i) = i)."""
    n = len(lam)
    index = torch.arange(n) if rows is None else torch.arange(rows.start, rows.stop)
    targets = torch.zeros(len(index), columns, dtype=lam.dtype)
    targets[torch.arange(len(index)), index] += lam[index]
    targets[torch.arange(len(index)), partner[index]] += 1 - lam[index]
    return targets


@LOSSES.register("mixup", MixUpOptions)
def mixup(inputs, options: MixUpOptions):
    """Embedding MixUp (λ ~ Beta(α, α) per row, soft InfoNCE targets λ / 1−λ) mixed into symmetric InfoNCE, per pair."""
    from xmbench.train.step import LossOutput

    parts, per_item = {}, []
    lam = partner = None
    rows = inputs.local_rows
    for a, b in inputs.pairs:
        n = len(inputs.embeddings[a])
        if len(inputs.embeddings[b]) != n:
            raise ValueError(f"mixup pairs row i of {a} with row i of {b}: they have {n} and "
                             f"{len(inputs.embeddings[b])} rows (a batch with extra rows needs an id-aware loss)")
        if lam is None:
            lam, partner = draw(n, options.alpha, options.seed, inputs.step)
        directions = []
        for query, gallery in ((a, b), (b, a)):
            device = inputs.embeddings[query].device
            index = torch.arange(n, device=device) if rows is None else torch.arange(rows.start, rows.stop, device=device)
            clean_logits = inputs.logits(query, gallery, rows)
            clean = F.cross_entropy(clean_logits, index, reduction="none")
            # a model whose scores read the rows' states: the mixed rows' states mix alike (not renormalised)
            states = inputs.states and {**inputs.states, query: mix(inputs.states[query], lam, partner, False)}
            mixed_inputs = replace(inputs, embeddings={
                **inputs.embeddings, query: mix(inputs.embeddings[query], lam, partner, options.renormalize)},
                states=states)
            logits = mixed_inputs.logits(query, gallery, rows)
            targets = soft_targets(lam, partner, n, rows).to(logits.device, logits.dtype)
            mixed = -(targets * F.log_softmax(logits, dim=1)).sum(1)
            directions.append((1 - options.weight) * clean + options.weight * mixed)
        parts[f"{a}-{b}"] = (directions[0].mean() + directions[1].mean()) / 2
        if rows is None:
            per_item.append(((directions[0] + directions[1]) / 2).detach())
    return LossOutput(parts, torch.stack(per_item).mean(0) if per_item else None)
