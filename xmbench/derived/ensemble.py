"""Embedding ensemble: the mean of the members' normalised embeddings, normalised again."""
from __future__ import annotations

from dataclasses import dataclass, field

from xmbench.errors import ConfigError
from xmbench.lazy import F, torch
from xmbench.registry import DERIVED


@dataclass(frozen=True)
class EnsembleOptions:
    """Attributes:
    weights: one weight per input variant, in order; empty: equal weights.
    """

    weights: list[float] = field(default_factory=list)


class EmbeddingEnsemble:
    """A model whose embedding is the weighted mean of its members' (L2-normalised) embeddings."""

    def __init__(self, members: list, weights: list[float]):
        self.members = members
        self.weights = weights
        self.modalities = tuple(m for m in members[0].modalities if all(m in x.modalities for x in members))

    def encode(self, modality: str, inputs):
        stacked = torch.stack([w * F.normalize(member.encode(modality, inputs).float(), dim=-1)
                               for w, member in zip(self.weights, self.members)])
        return F.normalize(stacked.sum(0), dim=-1)

    def named_parameters(self):
        for index, member in enumerate(self.members):
            for name, parameter in member.named_parameters():
                yield f"members.{index}.{name}", parameter

    def to(self, device):
        for member in self.members:
            member.to(device)
        return self

    def train(self, mode: bool = True):
        for member in self.members:
            member.train(mode)
        return self

    def eval(self):
        return self.train(False)


@DERIVED.register("ensemble", EnsembleOptions)
def ensemble(models: list, options: EnsembleOptions, val=None, eval_config=None) -> EmbeddingEnsemble:
    """Ensemble of variants: weighted mean of their normalised embeddings (equal weights by default)."""
    weights = list(options.weights) or [1.0 / len(models)] * len(models)
    if len(weights) != len(models):
        raise ConfigError(f"weights: {len(weights)} weights for {len(models)} input variants")
    return EmbeddingEnsemble(models, weights)
