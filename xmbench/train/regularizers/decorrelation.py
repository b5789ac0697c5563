"""Decorrelation of embedding dimensions (VICReg's covariance term, Bardes et al. 2022), per modality.

For each modality m encoded this step (the modalities of the pairs that train), with E_m its
batch's embeddings, n rows × d dimensions (flattened to (n, d) if the model returns more axes):
Z = E_m − mean over rows, C = ZᵀZ / (n − 1) the covariance matrix, or with `matrix = "correlation"`
R_ij = C_ij / sqrt((C_ii + 1e-8)(C_jj + 1e-8)). The term is

    weight · Σ_m (Σ_{i≠j} C_ij²) / d

(R in place of C for correlation). A modality with fewer than 2 rows adds 0.

Scale: embeddings are L2-normalised, so the covariance term is at most 1/d (Σ C_ii ≤ 1) and
barely acts unless its weight is large; the correlation term is scale free but has a floor when
n ≤ d (R has rank ≤ n − 1, so Σ_{i≠j} R_ij² / d ≥ d / (n − 1) − 1). Either way only its gradient,
which spreads the variance over more dimensions, matters.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from xmbench.lazy import torch
from xmbench.registry import REGULARIZERS
from xmbench.schema import NON_NEGATIVE

EPS = 1e-8  # keeps a constant dimension's correlation at 0 instead of 0/0


@dataclass(frozen=True)
class DecorrelationOptions:
    """Attributes:
    weight: multiplies Σ over modalities of (sum of squared off-diagonal entries of the batch's matrix) / d.
    matrix: covariance (VICReg) or correlation (each entry divided by the two dimensions' standard deviations).
    """

    weight: Annotated[float, NON_NEGATIVE] = 1.0
    matrix: Literal["covariance", "correlation"] = "covariance"


def off_diagonal_penalty(embeddings, matrix: str = "covariance"):
    """(Σ_{i≠j} M_ij²) / d of one modality's (n, d) embeddings, M their covariance or correlation matrix."""
    e = embeddings.reshape(len(embeddings), -1).float()
    n, d = e.shape
    if n < 2:
        return e.sum() * 0.0  # no covariance from one row; stays in the graph
    z = e - e.mean(dim=0, keepdim=True)
    m = z.T @ z / (n - 1)
    if matrix == "correlation":
        std = (m.diagonal() + EPS).sqrt()
        m = m / (std[:, None] * std[None, :])
    off = m - torch.diag_embed(m.diagonal())
    return off.pow(2).sum() / d


@REGULARIZERS.register("decorrelation", DecorrelationOptions)
def decorrelation(inputs, options: DecorrelationOptions):
    """Decorrelate embedding dimensions: weight · Σ_m (squared off-diagonal covariances of the batch) / d (VICReg)."""
    terms = [off_diagonal_penalty(e, options.matrix) for e in inputs.embeddings.values()]
    if not terms:
        return torch.zeros(())
    return options.weight * torch.stack(terms).sum()
