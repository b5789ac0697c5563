"""LayerNorm on the tower features, then the linear projection."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from xmbench.lazy import nn
from xmbench.registry import HEADS
from xmbench.schema import POSITIVE


@dataclass(frozen=True)
class LayerNormLinearOptions:
    """Attributes:
    affine: the LayerNorm learns a per-feature scale and shift (initialised to 1 and 0).
    eps: added to the variance inside the LayerNorm's square root.
    """

    affine: bool = True
    eps: Annotated[float, POSITIVE] = 1e-5


@HEADS.register("layernorm_linear", LayerNormLinearOptions)
def layernorm_linear(in_dim: int, embed_dim: int, options: LayerNormLinearOptions):
    """LayerNorm on the tower features, then one linear map into the shared space."""
    return nn.Sequential(nn.LayerNorm(in_dim, eps=options.eps, elementwise_affine=options.affine),
                         nn.Linear(in_dim, embed_dim))
