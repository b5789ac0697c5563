"""Score-level ensemble: the weighted mean of the members' own similarity matrices (a model offering `score`).

Unlike `ensemble` (which averages embeddings), each member ranks by its own similarity, so members
with different embedding widths, or members that score pairs themselves (fusion), combine too.
`encode` returns the members' encoded rows side by side, flattened, (rows, Σ widths); `score`
splits them again and mixes the members' (n_queries, n_gallery) similarities.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from xmbench.derived.ensemble import EmbeddingEnsemble
from xmbench.errors import ConfigError, ModelOutputError
from xmbench.lazy import torch
from xmbench.registry import DERIVED


@dataclass(frozen=True)
class ScoreEnsembleOptions:
    """Attributes:
    weights: one weight per input variant, in order (used as given); empty: equal weights 1 / inputs.
    """

    weights: list[float] = field(default_factory=list)


class ScoreEnsemble(EmbeddingEnsemble):
    """Scores Σ_m w_m · similarity_m(query, gallery), each member's similarity its own (`score`, else dot products)."""

    def __init__(self, members: list, weights: list[float]):
        super().__init__(members, weights)
        self.layouts: dict[str, list[tuple[int, ...]]] = {}  # modality → each member's encoded row shape

    def encode(self, modality: str, inputs):
        from xmbench.models import capabilities

        outputs = [capabilities.encode(member, modality, inputs).float() for member in self.members]
        self.layouts[modality] = [tuple(out.shape[1:]) for out in outputs]
        return torch.cat([out.reshape(len(out), -1) for out in outputs], dim=1)

    def member_rows(self, modality: str, rows):
        """The rows `encode` returned, split back into each member's encoded rows."""
        layout = self.layouts.get(modality)
        if layout is None:
            raise ModelOutputError(f"{type(self).__name__}.score: no {modality} rows were encoded by this ensemble "
                                   f"(score takes what its own encode returned)")
        widths = [math.prod(shape) for shape in layout]
        if rows.ndim != 2 or rows.shape[1] != sum(widths):
            raise ModelOutputError(f"{type(self).__name__}.score: {modality} rows of shape {tuple(rows.shape)} are not "
                                   f"this ensemble's encoding (rows, {sum(widths)})")
        return [part.reshape(len(rows), *shape) for part, shape in zip(rows.split(widths, dim=1), layout)]

    def member_scores(self, query_modality: str, queries, gallery_modality: str, gallery) -> list:
        """Each member's (n_queries, n_gallery) similarities, in fp32."""
        from xmbench.models import capabilities

        return [capabilities.similarity(member, query_modality, q, gallery_modality, g).float()
                for member, q, g in zip(self.members, self.member_rows(query_modality, queries),
                                        self.member_rows(gallery_modality, gallery))]

    def score(self, query_modality: str, queries, gallery_modality: str, gallery):
        scores = self.member_scores(query_modality, queries, gallery_modality, gallery)
        return sum(w * s for w, s in zip(self.weights, scores))


def check_weights(weights: list[float], n_members: int) -> list[float]:
    weights = list(weights) or [1.0 / n_members] * n_members
    if len(weights) != n_members:
        raise ConfigError(f"weights: {len(weights)} weights for {n_members} input variants")
    return weights


@DERIVED.register("score_ensemble", ScoreEnsembleOptions)
def score_ensemble(models: list, options: ScoreEnsembleOptions, val=None, eval_config=None) -> ScoreEnsemble:
    """Score-level ensemble: weighted mean of the members' own similarity matrices (equal weights by default)."""
    return ScoreEnsemble(models, check_weights(options.weights, len(models)))
