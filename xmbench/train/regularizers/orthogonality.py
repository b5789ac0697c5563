"""Soft orthogonality of the projection heads (Bansal et al. 2018): each head's map into the shared space near an isometry.

For a head's last Linear, weight W of shape (embed_dim × in_dim), the penalty is ‖G − I‖²_F with G
the Gram matrix of W's smaller side, the one that can equal the identity:
- embed_dim ≥ in_dim (W tall): G = WᵀW (in_dim × in_dim), W's columns orthonormal, so W
  preserves every feature vector's length and angles (an isometry into the shared space);
- embed_dim < in_dim (W wide): G = WWᵀ (embed_dim × embed_dim), W's rows orthonormal (W is
  an orthogonal projection onto its row space; WᵀW could only reach a projection, never I).
With a square W both are the same condition. The term is weight · Σ_m ‖G_m − I‖²_F over the
modalities whose projection the model offers (`capabilities.projection_weights`), every head
whether or not its modality trains this step; with `normalize`, each modality's term is divided
by the size of its G, min(embed_dim, in_dim), so widths compare. A model that offers no
projection weights gets 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from xmbench.lazy import torch
from xmbench.registry import REGULARIZERS
from xmbench.schema import NON_NEGATIVE


@dataclass(frozen=True)
class OrthogonalityOptions:
    """Attributes:
    weight: multiplies Σ over modalities of ‖G − I‖²_F, G the Gram matrix of the projection weight's smaller side.
    normalize: divide each modality's term by the size of its Gram matrix, min(embed_dim, in_dim).
    """

    weight: Annotated[float, NON_NEGATIVE] = 1e-3
    normalize: bool = False


def gram_penalty(weight, normalize: bool = False):
    """‖G − I‖²_F of one (out × in) weight, G = WᵀW when out ≥ in else WWᵀ (divided by G's size with `normalize`)."""
    w = weight.float()
    gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    eye = torch.eye(len(gram), device=gram.device, dtype=gram.dtype)
    penalty = (gram - eye).pow(2).sum()
    return penalty / len(gram) if normalize else penalty


@REGULARIZERS.register("orthogonality", OrthogonalityOptions)
def orthogonality(inputs, options: OrthogonalityOptions):
    """Soft orthogonality of each projection head: weight · Σ_m ‖W_mᵀW_m − I‖²_F (Gram of W's smaller side)."""
    from xmbench.models import capabilities

    weights = capabilities.projection_weights(inputs.model)
    if not weights:
        device = next(iter(inputs.embeddings.values())).device if inputs.embeddings else None
        return torch.zeros((), device=device)
    return options.weight * torch.stack([gram_penalty(w, options.normalize) for w in weights.values()]).sum()
