"""The torch modules of the fusion techniques (imported by their builders only: technique modules stay torch-free)."""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from xmbench.errors import ConfigError, ModelOutputError
from xmbench.models import capabilities

FUSION_FILE = "fusion.safetensors"
PREFIX = "reference."  # the wrapped model's parameter names, as the fused model names them


class PairCrossAttention(nn.Module):
    """Symmetric cross-attention between two embeddings, each expanded into a few tokens: one score per pair.

    For an embedding x of modality a and y of modality b (each (D,), the bi-encoder's L2-normalised
    outputs), with T = `tokens` and w = `width`:
    - tokens: X = split(E_a x) ∈ R^{T×w}, Y = split(E_b y) ∈ R^{T×w}, E_m a Linear(D, T·w) per
      modality (so a modality's tokens are its own learned expansion of its shared embedding);
    - cross-attention, one head, projections W_q, W_k, W_v (w × w) shared by both sides:
      each of X's T tokens attends over Y's T tokens, A_x = softmax(X W_q (Y W_k)ᵀ / √w) Y W_v,
      and each of Y's tokens over X's, A_y = softmax(Y W_q (X W_k)ᵀ / √w) X W_v;
      no self-attention, no attention across pairs;
    - pooling: u = mean_t LN(X + A_x), v = mean_t LN(Y + A_y) (residual, LayerNorm shared);
    - head: f(x, y) = w_2 · GELU(W_1 [u ⊙ v, u + v] + b_1) + b_2, with w_2, b_2 zero at init;
    - gate: g, a learned scalar (`gate_init`); the fused model scales f by sigmoid(g).
    f is symmetric, f(x, y) = f(y, x) for the same modalities, so scoring a→b and b→a agree (the
    loss takes the b→a logits as the transpose of a→b ones). Cost per pair: O(T²·w + T·w²).
    """

    def __init__(self, input_widths: dict[str, int], tokens: int, width: int, hidden: int, gate_init: float = 0.0):
        super().__init__()
        self.gate = nn.Parameter(torch.tensor(float(gate_init)))
        self.tokens_per_side, self.width = tokens, width
        self.expand = nn.ModuleDict({m: nn.Linear(d, tokens * width) for m, d in input_widths.items()})
        self.query, self.key, self.value = (nn.Linear(width, width, bias=False) for _ in range(3))
        self.norm = nn.LayerNorm(width)
        self.hidden = nn.Linear(2 * width, hidden)
        self.out = nn.Linear(hidden, 1)
        nn.init.zeros_(self.out.weight)  # the fused branch starts at 0: the fused score starts as the bi-encoder's
        nn.init.zeros_(self.out.bias)

    def tokens(self, modality: str, rows: torch.Tensor) -> torch.Tensor:
        """(..., D_m) rows (embeddings, or a tower's outputs) → (..., T, w) tokens."""
        return self.expand[modality](rows.float()).unflatten(-1, (self.tokens_per_side, self.width))

    def _attend(self, x: torch.Tensor, x_query: torch.Tensor, y_key: torch.Tensor, y_value: torch.Tensor):
        """x's tokens attending over y's (projections given, batch axes broadcast) → pooled (..., w)."""
        weights = (x_query @ y_key.transpose(-1, -2) / math.sqrt(self.width)).softmax(-1)
        return self.norm(x + weights @ y_value).mean(-2)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(..., T, w) token sets of the two sides, batch axes broadcastable → (...) fused scores.

        Each side is projected once, before broadcasting: (n, 1, T, w) queries against (n, m, T, w)
        candidates project n and n·m token sets, not 2·n·m.
        """
        u = self._attend(x, self.query(x), self.key(y), self.value(y))
        v = self._attend(y, self.query(y), self.key(x), self.value(x))
        u, v = torch.broadcast_tensors(u, v)
        return self.out(F.gelu(self.hidden(torch.cat([u * v, u + v], -1)))).squeeze(-1)


class CrossAttentionFusion(nn.Module):
    """The reference model with a gated cross-attention re-ranker: score = x·y + sigmoid(g) · f(x, y).

    `encode` is the wrapped model's (L2-normalised (rows, D) embeddings: the first stage, which
    pre-encodes galleries); `score` and `rerank` add the gated fused branch f of
    PairCrossAttention. With g → −∞ the gate shuts and every score is the bi-encoder's dot product.
    """

    def __init__(self, reference, options):
        super().__init__()
        self.reference = reference
        widths = {w.shape[0] for w in capabilities.projection_weights(reference).values()}
        if len(widths) != 1:
            raise ValueError(f"model.fusion: cross_attention needs the model's projections into one shared space, "
                             f"found widths {sorted(widths) or 'none'}")
        self.embed_dim = widths.pop()
        self.fusion = PairCrossAttention(self.input_widths(reference), options.tokens, options.width,
                                         options.hidden, options.gate_init)
        self.rerank_k = options.k
        self.pair_budget = options.pair_budget
        self.to(capabilities.device_of(reference))

    # -- what the fused branch reads of each row (subclasses: fusion before projection) ------
    def input_widths(self, reference) -> dict[str, int]:
        """The width of the rows the fused branch reads, per modality: here the shared embeddings'."""
        return dict.fromkeys(reference.modalities, self.embed_dim)

    def fusion_rows(self, embeddings: torch.Tensor, states: torch.Tensor | None) -> torch.Tensor:
        """The rows the fused branch reads: here the embeddings themselves."""
        return embeddings

    # -- what the fused model adds -----------------------------------------------------------
    @property
    def gate(self) -> torch.Tensor:
        """sigmoid(g): the share of the fused branch in the score."""
        return torch.sigmoid(self.fusion.gate)

    def fused(self, query_modality: str, queries: torch.Tensor, gallery_modality: str,
              candidates: torch.Tensor) -> torch.Tensor:
        """f of each query with its candidates: queries (n, D), candidates (n, m, D) → (n, m)."""
        x = self.fusion.tokens(query_modality, queries).unsqueeze(1)  # (n, 1, T, w)
        y = self.fusion.tokens(gallery_modality, candidates)  # (n, m, T, w)
        return self.fusion(x, y)

    def rerank(self, query_modality: str, queries: torch.Tensor, gallery_modality: str,
               candidates: torch.Tensor, states: tuple | None = None) -> torch.Tensor:
        """Scores of each query's own candidates: queries (n, D), candidates (n, k, D) → (n, k);
        `states` (the queries' (n, …) and the candidates' (n, k, …)) when the fused branch reads them."""
        query_states, candidate_states = states or (None, None)
        dots = (queries.float().unsqueeze(1) * candidates.float()).sum(-1)
        fused = self.fused(query_modality, self.fusion_rows(queries, query_states), gallery_modality,
                           self.fusion_rows(candidates, candidate_states))
        return dots + self.gate * fused

    def score(self, query_modality: str, queries: torch.Tensor, gallery_modality: str,
              gallery: torch.Tensor, states: tuple | None = None) -> torch.Tensor:
        """Every query against every gallery row, (n_q, D) × (n_g, D) → (n_q, n_g), in chunks of ≤ pair_budget pairs."""
        query_states, gallery_states = states or (None, None)
        dots = queries.float() @ gallery.float().T
        queries = self.fusion_rows(queries, query_states)
        y = self.fusion.tokens(gallery_modality, self.fusion_rows(gallery, gallery_states)).unsqueeze(0)  # every query's
        rows = max(1, self.pair_budget // max(len(gallery), 1))
        fused = [self.fusion(self.fusion.tokens(query_modality, queries[i:i + rows]).unsqueeze(1), y)
                 for i in range(0, len(queries), rows)]
        return dots + self.gate * (torch.cat(fused) if fused else dots.new_zeros(dots.shape))

    # -- the wrapped model's capabilities ----------------------------------------------------
    @property
    def modalities(self) -> tuple[str, ...]:
        return self.reference.modalities

    def encode(self, modality: str, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.reference.encode(modality, inputs)

    def logit_scales(self, pairs):
        return capabilities.logit_scales(self.reference, pairs)

    def after_optimizer_step(self) -> None:
        capabilities.after_optimizer_step(self.reference)

    def grad_scaler(self, device_type: str):
        method = getattr(self.reference, "grad_scaler", None)
        return method(device_type) if callable(method) else None

    def components(self) -> dict[str, nn.Module]:
        """The wrapped model's components, and `fusion` (the re-ranker with its gate)."""
        return {**capabilities.components(self.reference), "fusion": self.fusion}

    def component_of(self, parameter_name: str) -> str:
        if parameter_name.startswith(PREFIX):
            return capabilities.component_of(self.reference, parameter_name[len(PREFIX):])
        return "fusion"

    def training_callbacks(self) -> list:
        return capabilities.training_callbacks(self.reference)

    def adapter_stats(self) -> dict:
        return capabilities.adapter_stats(self.reference)

    def projection_weights(self) -> dict[str, torch.Tensor]:
        return capabilities.projection_weights(self.reference)

    def resized(self, modality: str, size: float):
        """The wrapped model's twin for another input size (encoders only: shape scaling times `encode`)."""
        twin = capabilities.resized(self.reference, modality, size)
        return self if twin is self.reference else twin

    # -- artifacts: the wrapped model's, plus the fusion's own tensors -------------------------
    def save_artifacts(self, directory: Path) -> int | None:
        from safetensors.torch import save_file

        from xmbench.models.artifacts import _trainable_state

        method = getattr(self.reference, "save_artifacts", None)
        if callable(method):
            inner = method(directory)
        else:
            state = _trainable_state(self.reference)
            if state:
                save_file(state, str(Path(directory) / "trained.safetensors"))
            inner = None
        own = {k: v.detach().contiguous() for k, v in self.fusion.state_dict().items()}
        save_file(own, str(Path(directory) / FUSION_FILE))
        return (inner or 0) + sum(v.numel() * v.element_size() for v in own.values())

    def load_artifacts(self, directory: Path) -> None:
        from safetensors.torch import load_file

        from xmbench.errors import XmbenchError
        from xmbench.models.artifacts import _load_trainable

        directory = Path(directory)
        method = getattr(self.reference, "load_artifacts", None)
        if callable(method):
            method(directory)
        elif (directory / "trained.safetensors").exists():
            _load_trainable(self.reference, load_file(str(directory / "trained.safetensors")),
                            directory / "trained.safetensors")
        path = directory / FUSION_FILE
        if not path.exists():
            raise XmbenchError(f"{directory}: no {FUSION_FILE}: these artifacts were not saved by a fused model")
        try:
            self.fusion.load_state_dict(load_file(str(path), device=str(capabilities.device_of(self))))
        except RuntimeError as exc:
            raise XmbenchError(f"{path}: the fusion's weights do not fit this model: {exc}") from None


class PreProjectionFusion(CrossAttentionFusion):
    """Fusion before projection: the fused branch reads each tower's pooled output, before its projection head.

    The first stage is still the bi-encoder (dot products of the shared embeddings); the re-ranker's
    tokens are expanded from the towers' outputs (each modality its own width), which are encoded with
    the rows as their states (`encode_states`: the gallery's once, as its embeddings are). The fused
    branch's gradients reach the towers through those states without passing the projection heads.
    """

    def __init__(self, reference, options):
        if not callable(getattr(reference, "encode_with_features", None)):
            raise ConfigError("model.fusion: pre_projection reads the towers' outputs before projection, which only "
                              "the reference model exposes (`encode_with_features`); use cross_attention instead")
        super().__init__(reference, options)

    def input_widths(self, reference) -> dict[str, int]:
        return {m: reference.towers[m].hidden_size for m in reference.modalities}

    def fusion_rows(self, embeddings: torch.Tensor, states: torch.Tensor | None) -> torch.Tensor:
        if states is None:
            raise ModelOutputError("model.fusion = pre_projection scores rows with their states (the towers' outputs), "
                                   "and this caller passed embeddings only: encode the rows with "
                                   "capabilities.encode_states and pass states=(query states, gallery states)")
        return states

    def encode_states(self, modality: str, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(the shared embeddings, the tower's output before projection), the tower run once."""
        return self.reference.encode_with_features(modality, inputs)
