"""Hard-negative-weighted InfoNCE (Robinson et al. 2021, "Contrastive learning with hard negative samples").

For a pair (a, b) and each direction, with logits L_ij = s · ⟨q_i, g_j⟩ (s the pair's logit
scale), the positive of query i is its own row (L_ii, as in infonce: row i of a and row i of b
hold the same item, so both have as many rows) and its negatives N(i) are the gallery rows of
other items (N = |N(i)|; rows of the same item are not negatives). As in the authors' code, the
negatives are reweighted by exp(β · L_ij) — β multiplies the scaled similarity, the logit —
normalised to mean 1 over the negatives:

    R_i  = Σ_{j∈N(i)} w_ij e^{L_ij},   w_ij = e^{β L_ij} / ((1/N) Σ_{k∈N(i)} e^{β L_ik})
    Ng_i = (R_i − τ⁺ N e^{L_ii}) / (1 − τ⁺), clamped below at N e^{−s}  (debiasing; only when τ⁺ > 0)
    ℓ_i  = −log(e^{L_ii} / (e^{L_ii} + Ng_i))

computed in log space. With β = 0 and τ⁺ = 0 (and one row per item), R_i = Σ_{j∈N(i)} e^{L_ij} and ℓ_i is InfoNCE's
cross-entropy exactly (the clamp, which only guards the debiased estimate, is not applied then).
The pair's part is the mean over queries of both directions, averaged; `per_item`: each row's ℓ
averaged over both directions and every pair (not on several ranks with the local loss).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

from xmbench.lazy import torch
from xmbench.registry import LOSSES
from xmbench.schema import NON_NEGATIVE, PROBABILITY
from xmbench.train.losses._pairwise import directions, mean_per_item, targets


@dataclass(frozen=True)
class HardNegativeInfoNCEOptions:
    """Attributes:
    beta: concentration on hard negatives: weights ∝ exp(beta · logit); 0 is InfoNCE.
    tau_plus: class prior of the debiased estimator (Chuang et al. 2020); 0 keeps every negative as is.
    """

    beta: Annotated[float, NON_NEGATIVE] = 1.0
    tau_plus: Annotated[float, PROBABILITY] = 0.0


def hn_direction(logits, target, negative, scale, beta: float, tau_plus: float):
    """(queries,) ℓ of one direction; `negative` (queries, gallery) marks each query's negatives."""
    positive = logits.gather(1, target[:, None])[:, 0]
    ninf = torch.full_like(logits, float("-inf"))
    count = negative.sum(1).to(logits.dtype)
    has_negative = count > 0
    log_count = torch.log(count.clamp(min=1))
    # log R = log N + logsumexp((1 + β) L) − logsumexp(β L), over the negatives (a query without
    # negatives keeps its row finite, so that no NaN reaches the gradient; its ℓ is 0)
    mask = negative | ~has_negative[:, None]
    log_reweighted = (log_count + torch.logsumexp(torch.where(mask, (1 + beta) * logits, ninf), 1)
                      - torch.logsumexp(torch.where(mask, beta * logits, ninf), 1))
    if tau_plus > 0:  # the exponent is capped where the clamp below decides anyway (no inf · 0 gradient)
        ratio = tau_plus * count * torch.exp((positive - log_reweighted).clamp(max=80.0))
        debiased = log_reweighted + torch.log((1 - ratio).clamp(min=1e-30)) - math.log(1 - tau_plus)
        floor = log_count - scale  # N · e^{−s}: every negative at cosine −1
        log_reweighted = torch.maximum(debiased, floor)
    log_negatives = torch.where(has_negative, log_reweighted, torch.full_like(log_reweighted, float("-inf")))
    loss = torch.logaddexp(positive, log_negatives) - positive
    return torch.where(has_negative, loss, torch.zeros_like(loss))


@LOSSES.register("hn_infonce", HardNegativeInfoNCEOptions)
def hn_infonce(inputs, options: HardNegativeInfoNCEOptions):
    """InfoNCE with hard negatives up-weighted by exp(beta · logit) (Robinson et al. 2021); beta = 0 is InfoNCE."""
    from xmbench.train.step import LossOutput

    parts, per_item = {}, []
    for a, b in inputs.pairs:
        scale = inputs.logit_scales[f"{a}-{b}" if f"{a}-{b}" in inputs.logit_scales else f"{b}-{a}"]
        means = []
        for logits, positive, _ in directions(inputs, a, b):
            loss = hn_direction(logits, targets(inputs, logits), ~positive, scale, options.beta, options.tau_plus)
            means.append(loss.mean())
            if inputs.local_rows is None:
                per_item.append(loss)
        parts[f"{a}-{b}"] = (means[0] + means[1]) / 2
    return LossOutput(parts, mean_per_item(per_item))
