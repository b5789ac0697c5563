"""Symmetric InfoNCE (CLIP, van den Oord et al. 2018): in-batch negatives, both directions, every pair."""
from __future__ import annotations

from xmbench.lazy import F, torch
from xmbench.registry import LOSSES


@LOSSES.register("infonce")
def infonce(inputs, options):
    """Symmetric InfoNCE (CLIP): cross-entropy both ways over in-batch negatives, per modality pair."""
    from xmbench.train.step import LossOutput

    parts, per_item = {}, []
    for a, b in inputs.pairs:
        if inputs.local_rows is not None:  # several ranks, local loss: this rank's rows as queries, both ways
            rows = inputs.local_rows
            target = torch.arange(rows.start, rows.stop, device=inputs.embeddings[a].device)
            parts[f"{a}-{b}"] = (F.cross_entropy(inputs.logits(a, b, rows), target)
                                 + F.cross_entropy(inputs.logits(b, a, rows), target)) / 2
            continue
        logits = inputs.logits(a, b)
        target = torch.arange(len(logits), device=logits.device)
        parts[f"{a}-{b}"] = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        with torch.no_grad():  # each row's own loss, for samplers that weigh items by difficulty
            detached = logits.detach()
            per_item.append((F.cross_entropy(detached, target, reduction="none")
                             + F.cross_entropy(detached.T, target, reduction="none")) / 2)
    return LossOutput(parts, torch.stack(per_item).mean(0) if per_item else None)
