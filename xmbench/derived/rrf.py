"""Reciprocal-rank fusion (Cormack et al. 2009): score(q, g) = Σ_m 1 / (k + rank_m(q, g)), a model offering `score`.

rank_m(q, g) is the 1-based rank of gallery row g among all gallery rows for query q under member
m's own similarity; tied rows share the best rank of their tie (1 + the rows scoring strictly
higher), so the fused score does not depend on the gallery's order. Only ranks matter: members
whose similarity scales differ fuse without calibration.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from xmbench.derived.score_ensemble import ScoreEnsemble
from xmbench.lazy import torch
from xmbench.registry import DERIVED
from xmbench.schema import NON_NEGATIVE


@dataclass(frozen=True)
class RrfOptions:
    """Attributes:
    k: the constant of 1 / (k + rank): larger k flattens the weight of the top ranks (Cormack et al.: 60).
    """

    k: Annotated[float, NON_NEGATIVE] = 60.0


def competition_ranks(scores):
    """(n_queries, n_gallery) 1-based ranks within each row, best first; ties share 1 + (rows strictly higher)."""
    ascending = scores.sort(dim=1).values
    not_above = torch.searchsorted(ascending, scores.contiguous(), right=True)  # rows scoring <= each score
    return scores.shape[1] - not_above + 1


class ReciprocalRankFusion(ScoreEnsemble):
    """Σ over members of 1 / (k + the gallery row's rank under that member's similarity)."""

    def __init__(self, members: list, k: float):
        super().__init__(members, [1.0] * len(members))
        self.k = k

    def score(self, query_modality: str, queries, gallery_modality: str, gallery):
        scores = self.member_scores(query_modality, queries, gallery_modality, gallery)
        return sum(1.0 / (self.k + competition_ranks(s.detach()).double()) for s in scores).float()


@DERIVED.register("rrf", RrfOptions)
def rrf(models: list, options: RrfOptions, val=None, eval_config=None) -> ReciprocalRankFusion:
    """Reciprocal-rank fusion: Σ over members of 1 / (k + rank), k = 60 by default."""
    return ReciprocalRankFusion(models, options.k)
