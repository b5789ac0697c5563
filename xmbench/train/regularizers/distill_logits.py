"""Logit distillation (Hinton et al. 2015, as in CLIP-KD): the student's in-batch similarity distributions match the teacher's.

For each pair (a, b) of the step whose two modalities the teacher embedded, with S the student's
similarities of the batch (n × n: `capabilities.similarity`, the model's own `score` for a fused
model, else dot products of the embeddings) and T the teacher's (dot products of
`inputs.teacher` embeddings, detached), both divided by the `temperature` option τ:

    KL_{a→b} = mean_i KL(softmax(T_i/τ) ‖ softmax(S_i/τ))      rows: each a-row over the b candidates
    KL_{b→a} = the same over columns                          each b-row over the a candidates
    term(a, b) = (KL_{a→b} + KL_{b→a}) / 2

and the regulariser is weight · mean over those pairs of term(a, b). No τ² factor: fold it into
the weight. It is 0 when the student's and the teacher's similarities are equal, whatever τ.

Without a teacher (`inputs.teacher` is None) it is 0, a no-op, by design: validation, the FLOPs
probe and the trace build their own training step, which has no teacher. A step with a teacher
that lacks one of a pair's modalities skips that pair (0 when it covers none). Mind that a
suite listing this regulariser without `train.teacher` or the `ema_teacher` callback therefore
distils nothing: its log shows `reg/distill_logits` = 0 at every step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from xmbench.lazy import F, torch
from xmbench.registry import REGULARIZERS
from xmbench.schema import NON_NEGATIVE, POSITIVE


@dataclass(frozen=True)
class DistillLogitsOptions:
    """Attributes:
    weight: multiplies the mean over pairs of the two directions' mean KL(teacher ‖ student).
    temperature: τ dividing both similarity matrices before the softmax over in-batch candidates.
    """

    weight: Annotated[float, NON_NEGATIVE] = 1.0
    temperature: Annotated[float, POSITIVE] = 0.07


def similarity_kl(student, teacher, temperature: float):
    """(KL over rows + KL over columns) / 2 of two (n × m) similarity matrices: mean_i KL(softmax(T_i/τ) ‖ softmax(S_i/τ))."""
    def rows(s, t):
        return F.kl_div(F.log_softmax(s / temperature, dim=1), F.log_softmax(t / temperature, dim=1),
                        log_target=True, reduction="batchmean")

    return (rows(student.float(), teacher.float()) + rows(student.float().T, teacher.float().T)) / 2


@REGULARIZERS.register("distill_logits", DistillLogitsOptions)
def distill_logits(inputs, options: DistillLogitsOptions):
    """KL(teacher ‖ student) of the in-batch similarity distributions at temperature τ, both directions, per pair."""
    device = next(iter(inputs.embeddings.values())).device if inputs.embeddings else None
    teacher = inputs.teacher
    if teacher is None:
        return torch.zeros((), device=device)
    terms = []
    for a, b in inputs.pairs:
        if a not in teacher or b not in teacher or a not in inputs.embeddings or b not in inputs.embeddings:
            continue
        student = inputs.similarity(a, b)
        taught = teacher[a].detach().float() @ teacher[b].detach().float().T
        if taught.shape != student.shape:
            raise ValueError(f"distill_logits: the teacher's {a}-{b} similarities are {tuple(taught.shape)}, the "
                             f"student's {tuple(student.shape)}: the teacher must embed the same rows")
        terms.append(similarity_kl(student, taught.to(student.device), options.temperature))
    if not terms:
        return torch.zeros((), device=device)
    return options.weight * torch.stack(terms).mean()
