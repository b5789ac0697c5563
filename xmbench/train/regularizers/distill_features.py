"""Feature distillation: each student embedding near the teacher's embedding of the same row, per modality.

For each modality m the step encoded (the modalities of its pairs) that the teacher also
embedded, with s_i the student's and t_i the teacher's (detached) embedding of row i:

    cosine: D_m = mean_i (1 − cos(s_i, t_i))
    mse:    D_m = mean_{i,j} (s_ij − t_ij)²          (mean over rows and dimensions; the raw
                                                      embeddings, L2-normalised for the reference model)

and the regulariser is weight · mean over those modalities of D_m. Student and teacher must share
the embedding width (no learned projection between them): another width is an error naming both.
It is 0 when they are equal.

Without a teacher (`inputs.teacher` is None) it is 0, a no-op, by design: validation, the FLOPs
probe and the trace build their own training step, which has no teacher (see distill_logits).
A suite listing it without `train.teacher` or the `ema_teacher` callback distils nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from xmbench.lazy import F, torch
from xmbench.registry import REGULARIZERS
from xmbench.schema import NON_NEGATIVE


@dataclass(frozen=True)
class DistillFeaturesOptions:
    """Attributes:
    weight: multiplies the mean over modalities of the per-row distance.
    metric: cosine (1 − cos(student, teacher), mean over rows) or mse (mean squared difference over rows and dimensions).
    """

    weight: Annotated[float, NON_NEGATIVE] = 1.0
    metric: Literal["cosine", "mse"] = "cosine"


def feature_distance(student, teacher, metric: str = "cosine"):
    """Mean over rows of 1 − cos(s_i, t_i) (cosine), or mean squared difference over every element (mse)."""
    s, t = student.float().flatten(1), teacher.float().flatten(1)
    if metric == "cosine":
        return (1 - F.cosine_similarity(s, t, dim=1)).mean()
    return (s - t).pow(2).mean()


@REGULARIZERS.register("distill_features", DistillFeaturesOptions)
def distill_features(inputs, options: DistillFeaturesOptions):
    """Student embeddings towards the teacher's, per modality: 1 − cosine or MSE, averaged over rows and modalities."""
    device = next(iter(inputs.embeddings.values())).device if inputs.embeddings else None
    teacher = inputs.teacher
    if teacher is None:
        return torch.zeros((), device=device)
    terms = []
    for modality, student in inputs.embeddings.items():
        if modality not in teacher:
            continue
        taught = teacher[modality].detach().to(student.device)
        if taught.shape != student.shape:
            raise ValueError(f"distill_features: the teacher's {modality} embeddings are {tuple(taught.shape)}, the "
                             f"student's {tuple(student.shape)}: feature distillation needs the same rows and width")
        terms.append(feature_distance(student, taught, options.metric))
    if not terms:
        return torch.zeros((), device=device)
    return options.weight * torch.stack(terms).mean()
