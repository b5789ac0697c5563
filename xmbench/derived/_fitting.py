"""What techniques fitted on the validation split share: its directions, the members' similarity
matrices on it, and one number to maximise (a metric averaged over the directions).

Imported inside builders (it imports the evaluator, hence torch).
"""
from __future__ import annotations

import torch

from xmbench.config import EvalConfig
from xmbench.errors import XmbenchError
from xmbench.eval.retrieval import (
    direction_modalities,
    encode_split,
    evaluate_embeddings,
    rank_scores,
    summarize,
    supported_directions,
)
from xmbench.models import capabilities

# metrics a fit may maximise: higher is better for each
METRICS = ("R@1", "R@5", "R@10", "mAP", "mAP@10", "MRR")
KS = (1, 5, 10)


def eval_settings(eval_config: EvalConfig | None) -> EvalConfig:
    return eval_config if eval_config is not None else EvalConfig()


def directions_on(split, models, eval_config: EvalConfig | None, technique: str) -> list[str]:
    """The evaluated directions that the split and every model support; an error when none is left."""
    modalities = set(split.modalities)
    for model in models:
        modalities &= set(model.modalities)
    directions = supported_directions(eval_settings(eval_config).directions, modalities)
    if not directions:
        raise XmbenchError(f"{technique}: no evaluated direction is supported by the validation split "
                           f"({', '.join(split.modalities)}) and every input model")
    return directions


def mean_metric(metrics: dict, directions: list[str], metric: str) -> float:
    """`metric` averaged over the directions of an evaluation's metrics."""
    return sum(float(metrics[d][metric]) for d in directions) / len(directions)


def model_score(model, split, directions: list[str], metric: str, eval_config: EvalConfig | None) -> float:
    """The model evaluated on `split` (its own `score` when it has one): `metric` averaged over `directions`."""
    settings = eval_settings(eval_config)
    modalities = {m for d in directions for m in direction_modalities(d)}
    embeddings = {m: encode_split(model, split, m, settings.batch_size) for m in modalities}
    metrics, _ = evaluate_embeddings(embeddings, split, directions, KS, settings.chunk_size, model)
    return mean_metric(metrics, directions, metric)


@torch.inference_mode()
def member_similarities(members: list, split, directions: list[str],
                        eval_config: EvalConfig | None) -> dict[str, torch.Tensor]:
    """{direction: (members, n_queries, n_gallery)}: each member's own similarities on the split (fp32, CPU)."""
    settings = eval_settings(eval_config)
    modalities = sorted({m for d in directions for m in direction_modalities(d)})
    encoded = [{m: encode_split(member, split, m, settings.batch_size) for m in modalities} for member in members]
    stacked = {}
    for direction in directions:
        q, g = direction_modalities(direction)
        stacked[direction] = torch.stack([capabilities.similarity(member, q, e[q], g, e[g]).float().cpu()
                                          for member, e in zip(members, encoded)])
    return stacked


def scores_metric(scores: dict[str, torch.Tensor], split, metric: str, chunk_size: int = 1024) -> float:
    """`metric` of {direction: (n_queries, n_gallery) scores} on the split, averaged over the directions."""
    total = 0.0
    for direction, matrix in scores.items():
        q, g = direction_modalities(direction)
        total += float(summarize(rank_scores(matrix, split.row_ids(q), split.row_ids(g), chunk_size), KS)[metric])
    return total / len(scores)
