"""Fusion before projection: the gated cross-attention re-ranker reading the towers' outputs, not the shared embeddings.

score = x·y + sigmoid(g) · f(h_a, h_b): x, y the bi-encoder's shared embeddings (the first stage, as
in cross_attention), h_a, h_b the towers' pooled outputs before their projection heads (each
modality its own width: 384 for the MiniLM text tower). f is cross_attention's symmetric pair
cross-attention, with each modality's tokens expanded from h instead of from the embedding, so the
re-ranker sees what the projection into the shared space throws away.

The towers' outputs are the rows' *states* (the `encode_states` capability): encoded with the rows,
the gallery's once with its embeddings (they cost its width in memory per gallery row), and
handed to `score` and `rerank` beside the embeddings; training's in-batch scores read the batch's
states, so the fused branch's gradient reaches the towers without passing the heads. f starts at 0
(zero output layer): a fresh fused model scores as the bi-encoder. Losses and regularisers read the
states through `LossInput.similarity` (MixUp mixes them with the embeddings); what scores rows
from embeddings alone (the negative miner, derived runs over fused members) cannot serve this
model and says so; GradCache and several ranks refuse it by name.
"""
from __future__ import annotations

from xmbench.models.fusion.cross_attention import CrossAttentionOptions
from xmbench.registry import FUSIONS


@FUSIONS.register("pre_projection", CrossAttentionOptions)
def pre_projection(model, options: CrossAttentionOptions):
    """Gated cross-attention re-ranker over the towers' outputs before projection: x·y + sigmoid(g)·f(h_x, h_y) on the top-k."""
    from xmbench.models.fusion._layers import PreProjectionFusion

    return PreProjectionFusion(model, options)
