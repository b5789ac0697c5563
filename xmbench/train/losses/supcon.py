"""Supervised contrastive loss (Khosla et al. 2020) across modalities: every row of the same item is a positive.

For a pair (a, b) and each direction (a-rows query the b-rows, then b-rows query the a-rows),
with logits L_ij = s · ⟨q_i, g_j⟩ (s the pair's logit scale, the model's 1 / temperature, or
1 / `temperature` when set) and P(i) the gallery rows with the item of query i:

    out (the paper's L_out, its better variant):  ℓ_i = −(1/|P(i)|) Σ_{p∈P(i)} log softmax_j(L_i)_p
    in  (L_in):                                    ℓ_i = −log((1/|P(i)|) Σ_{p∈P(i)} softmax_j(L_i)_p)

The denominator runs over every gallery row: queries and gallery are of different modalities,
so no row is its own anchor and none is excluded. The pair's part is the mean of the two
directions, each the mean over its queries that have a positive (queries without one add
nothing). With one row per item (the engine's batches) both variants equal symmetric InfoNCE;
they differ from it when an item appears in several rows (several captions of one item), where
InfoNCE would count the other rows as negatives. `per_item`: each row's ℓ averaged over both
directions and every pair (not on several ranks with the local loss).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Literal

from xmbench.lazy import torch
from xmbench.registry import LOSSES
from xmbench.schema import POSITIVE
from xmbench.train.losses._pairwise import directions, mean_per_item


@dataclass(frozen=True)
class SupConOptions:
    """Attributes:
    variant: out (mean of the positives' log-probabilities, Khosla's L_out) or in (log of their mean probability).
    temperature: a fixed temperature τ (logits ⟨q, g⟩ / τ; the paper: 0.1); unset: each pair's logit scale (learnable).
    """

    variant: Literal["out", "in"] = "out"
    temperature: Annotated[float, POSITIVE] | None = None


def supcon_direction(logits, positive, variant: str = "out"):
    """(queries,) ℓ of each query, and which queries have a positive (the others' ℓ is 0)."""
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    count = positive.sum(1)
    valid = count > 0
    if variant == "out":
        total = torch.where(positive, log_prob, torch.zeros_like(log_prob)).sum(1)
        loss = -total / count.clamp(min=1)
    else:
        keep = positive | ~valid[:, None]  # a query without positives keeps finite values (no NaN gradient)
        masked = torch.where(keep, log_prob, torch.full_like(log_prob, float("-inf")))
        loss = -(torch.logsumexp(masked, dim=1) - torch.log(count.clamp(min=1).to(log_prob.dtype)))
    return torch.where(valid, loss, torch.zeros_like(loss)), valid


@LOSSES.register("supcon", SupConOptions)
def supcon(inputs, options: SupConOptions):
    """Supervised contrastive (Khosla et al.) across modalities: all rows of an item are positives, both directions."""
    from xmbench.train.step import LossOutput

    if options.temperature is not None:
        fixed = {name: torch.as_tensor(1.0 / options.temperature, device=scale.device)
                 for name, scale in inputs.logit_scales.items()}
        inputs = replace(inputs, logit_scales=fixed)
    parts, per_item = {}, []
    for a, b in inputs.pairs:
        means = []
        for logits, positive, _ in directions(inputs, a, b):
            loss, valid = supcon_direction(logits, positive, options.variant)
            means.append(loss.sum() / valid.sum().clamp(min=1))
            if inputs.local_rows is None:
                per_item.append(loss)
        parts[f"{a}-{b}"] = (means[0] + means[1]) / 2
    return LossOutput(parts, mean_per_item(per_item))
