"""Modality alignment: which pairs of modalities line up in the shared space, and which do not.

- pair matrix: R@1 of every direction as a query-modality × gallery-modality table;
- alignment (Wang & Isola, 2020): E ||f(x) − f(y)||² over positive pairs (lower is better);
- uniformity (Wang & Isola, 2020): log E exp(−2 ||f(x) − f(y)||²) over pairs of distinct rows
  of one modality (lower: spread more evenly over the sphere);
- modality gap (Liang et al., 2022): the distance between the two modalities' centroids;
- underperforming pairs: pairs ranked by the mean R@1 of their two directions, each with its
  shortfall against the best pair; a pair below UNDERPERFORM_RATIO × the best is flagged.
"""
from __future__ import annotations

import itertools

import torch

from xmbench.eval.retrieval import LETTER_MODALITY

UNIFORMITY_MAX_ROWS = 2048  # uniformity over a fixed subsample: O(n²) pairs
UNDERPERFORM_RATIO = 0.75


def alignment(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean squared distance between row-aligned positive pairs."""
    return float((x - y).pow(2).sum(1).mean())


def uniformity(x: torch.Tensor, t: float = 2.0) -> float:
    """log of the mean Gaussian potential over distinct pairs of rows."""
    if len(x) > UNIFORMITY_MAX_ROWS:
        x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:UNIFORMITY_MAX_ROWS]]
    distances = torch.pdist(x.double(), p=2).pow(2)
    return float(distances.mul(-t).exp().mean().log())


def modality_gap(x: torch.Tensor, y: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(x.mean(0) - y.mean(0)))


def analyse_alignment(embeddings: dict[str, torch.Tensor], row_items: dict[str, torch.Tensor], metrics: dict) -> dict:
    """All of the module docstring for the modalities present.

    `row_items[m]` gives, for each embedding row of modality m, the item it belongs to (captions
    map to their item; image and audio rows are items), so positives pair up across modalities.
    """
    embeddings = {m: e.detach().cpu() for m, e in embeddings.items()}  # small: the analysis runs on the CPU
    modalities = [m for m in ("text", "image", "audio") if m in embeddings]
    matrix = {q: {g: None for g in modalities} for q in modalities}
    for direction, values in metrics.items():
        if isinstance(values, dict) and direction[0] in "tia":
            matrix[LETTER_MODALITY[direction[0]]][LETTER_MODALITY[direction[2]]] = values.get("R@1")
    pairs = {}
    for a, b in itertools.combinations(modalities, 2):
        xa, xb = _positive_pairs(embeddings[a], row_items[a], embeddings[b], row_items[b])
        r1 = [v for v in (matrix[a][b], matrix[b][a]) if v is not None]
        pairs[f"{a}-{b}"] = {"alignment": alignment(xa, xb), "modality_gap": modality_gap(embeddings[a], embeddings[b]),
                             "mean_r1": sum(r1) / len(r1) if r1 else None}
    ranked = _rank_pairs(pairs)
    return {"r1_matrix": matrix, "pairs": pairs,
            "uniformity": {m: uniformity(embeddings[m].float()) for m in modalities},
            "ranked_pairs": ranked}


def _positive_pairs(xa, items_a, xb, items_b) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of a and b paired by item: every row of a with the first row of b of the same item."""
    first_b = {}
    for row, item in enumerate(items_b.tolist()):
        first_b.setdefault(item, row)
    rows_a = [r for r, item in enumerate(items_a.tolist()) if item in first_b]
    rows_b = [first_b[items_a[r].item()] for r in rows_a]
    return xa[rows_a].float(), xb[rows_b].float()


def _rank_pairs(pairs: dict[str, dict]) -> list[dict]:
    scored = [(name, p["mean_r1"]) for name, p in pairs.items() if p["mean_r1"] is not None]
    if not scored:
        return []
    best = max(score for _, score in scored)
    ranked = []
    for name, score in sorted(scored, key=lambda x: x[1]):
        ranked.append({"pair": name, "mean_r1": score, "shortfall_vs_best": best - score,
                       "underperforms": best > 0 and score < UNDERPERFORM_RATIO * best})
    return ranked
