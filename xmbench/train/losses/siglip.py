"""SigLIP's pairwise sigmoid loss (Zhai et al. 2023) with a learnable bias and the pair logit scales.

For a pair (a, b): z_ij = s · ⟨a_i, b_j⟩ + β (s the pair's logit scale, the model's learnable
1 / temperature; β the loss's learnable bias, initialised at `init_bias`, −10 as the paper) and
y_ij = +1 where rows i and j hold the same item, −1 otherwise. Each of the B_a · B_b pairs is a
binary classification, ℓ_ij = −log σ(y_ij z_ij), and the pair's part is

    batch (default, the paper's Algorithm 1):  Σ_ij ℓ_ij / B   (the sum over the B² pairs divided by the batch size)
    mean:                                      Σ_ij ℓ_ij / (B_a · B_b)

computed as the mean of the two directions (a-rows against the b-rows, and the reverse; with
dot products they are equal, as z of b→a is zᵀ), B being the direction's number of query rows.
On several ranks with the local loss each direction takes this rank's query rows against the
global batch, so the ranks together cover every pair. The logit scale is the model's (the
reference initialises its temperature at 0.07, not SigLIP's 1/10).

The bias is one learnable scalar for every pair (`parameters`: "bias"), or with `per_pair_bias`
one per modality pair ("bias/text-image", …; those of pairs that do not train get no gradient).
`per_item`: each row's Σ_j ℓ_ij (/ B_b with `mean`), averaged over both directions and every pair.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from xmbench.lazy import F
from xmbench.registry import LOSSES
from xmbench.train.losses._pairwise import directions, mean_per_item

PAIRS = ("text-image", "text-audio", "image-audio")


@dataclass(frozen=True)
class SigLIPOptions:
    """Attributes:
    init_bias: initial value of the learnable bias added to every logit (the paper: −10).
    per_pair_bias: one bias per modality pair instead of one shared by all pairs.
    reduction: batch (sum over the B² pairs / B, the paper's Algorithm 1) or mean (over the B² pairs).
    """

    init_bias: float = -10.0
    per_pair_bias: bool = False
    reduction: Literal["batch", "mean"] = "batch"


def bias_parameters(options: SigLIPOptions) -> dict[str, float]:
    """The learnable scalars the loss owns: one bias, or one per pair."""
    if options.per_pair_bias:
        return {f"bias/{pair}": options.init_bias for pair in PAIRS}
    return {"bias": options.init_bias}


def sigmoid_direction(logits, positive, bias, reduction: str = "batch"):
    """(queries,) each query row's loss: Σ_j −log σ(y_ij (L_ij + β)) (/ gallery rows with `mean`)."""
    labels = positive.to(logits.dtype) * 2 - 1
    terms = -F.logsigmoid(labels * (logits + bias))
    rows = terms.sum(1)
    return rows / terms.shape[1] if reduction == "mean" else rows


@LOSSES.register("siglip", SigLIPOptions, parameters=bias_parameters)
def siglip(inputs, options: SigLIPOptions):
    """SigLIP: a sigmoid loss on every pair of rows, with a learnable bias (init −10) and the pair logit scales."""
    from xmbench.train.step import LossOutput

    parts, per_item = {}, []
    for a, b in inputs.pairs:
        name = f"{a}-{b}"
        key = f"bias/{name}" if options.per_pair_bias else "bias"
        if key not in inputs.parameters and f"bias/{b}-{a}" in inputs.parameters:
            key = f"bias/{b}-{a}"
        bias = inputs.parameters[key] if key in inputs.parameters else options.init_bias
        means = []
        for logits, positive, _ in directions(inputs, a, b):
            rows = sigmoid_direction(logits, positive, bias, options.reduction)
            means.append(rows.mean())  # Σ_i rows_i / B: the batch reduction's Σ_ij / B, or the mean of the B² terms
            if inputs.local_rows is None:
                per_item.append(rows)
        parts[name] = (means[0] + means[1]) / 2
    return LossOutput(parts, mean_per_item(per_item))
