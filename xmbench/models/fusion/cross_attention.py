"""A lightweight cross-attention re-ranker on top of the bi-encoder, gated: score = x·y + sigmoid(g) · f(x, y).

The fused model wraps the reference model (as its submodule `reference`; its parameters are
named `reference.…` and keep their components: tower/<m>, head/<m>, temperature) and adds the
component `fusion`:

- What attends to what. x and y are the bi-encoder's L2-normalised embeddings of a query and a
  candidate (D wide). Each is expanded into `tokens` tokens of width `width` by a Linear of its
  modality (D → tokens·width). Every query token attends over the candidate's tokens and every
  candidate token over the query's (one head, scaled dot product, shared q/k/v projections),
  with a residual and a LayerNorm; each side's tokens are mean-pooled (u, v) and
  f(x, y) = MLP([u ⊙ v, u + v]) (hidden width `hidden`, output layer zero at init). Nothing
  attends across pairs, and f is symmetric, so a→b and b→a scores agree.
- The fused branch starts from the shared features, re-expanded into tokens: the rows every
  consumer of embeddings reads. Fusion before projection, on the towers' outputs, is the
  technique `pre_projection` (same options, rows encoded with their states).
- The gate: g a learned scalar, init `gate_init` (0: sigmoid 0.5). Since f starts at exactly 0,
  the fused model starts as the bi-encoder; training moves f and g, and can shut the branch
  (g → −∞ gives the bi-encoder's dot product exactly).

Training: the loss's in-batch logits are the model's `score` (every pair of the batch) times
the logit scale. Evaluation and the online query path: the first stage's top-`k` candidates per
query (dot products of the embeddings) are re-scored by `rerank` and placed above the others
(xmbench/eval/rerank.py). Artifacts: the wrapped model's, plus `fusion.safetensors`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from xmbench.registry import FUSIONS
from xmbench.schema import POSITIVE


@dataclass(frozen=True)
class CrossAttentionOptions:
    """Attributes:
    k: candidates of the first stage re-scored per query at evaluation and on the query path (rerank_k).
    tokens: tokens each embedding is expanded into (T); attention costs T² per pair.
    width: width of each token (w) and of the attention.
    hidden: hidden width of the scoring MLP on the pooled tokens.
    gate_init: initial gate logit g; the fused branch is scaled by sigmoid(g).
    pair_budget: query–candidate pairs scored at once by `score` (bounds its memory).
    """

    k: Annotated[int, POSITIVE] = 10
    tokens: Annotated[int, POSITIVE] = 4
    width: Annotated[int, POSITIVE] = 32
    hidden: Annotated[int, POSITIVE] = 64
    gate_init: float = 0.0
    pair_budget: Annotated[int, POSITIVE] = 4096


@FUSIONS.register("cross_attention", CrossAttentionOptions)
def cross_attention(model, options: CrossAttentionOptions):
    """Gated cross-attention re-ranker over the bi-encoder's embeddings: x·y + sigmoid(g)·f(x, y) on its top-k."""
    from xmbench.models.fusion._layers import CrossAttentionFusion

    return CrossAttentionFusion(model, options)
