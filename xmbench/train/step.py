"""One training step's forward and objective: the one place the engine, validation, FLOPs and the trace share.

A batch is encoded modality by modality; the loss (a registered technique) gets one `LossInput`
and returns its named parts; the objective weighs the pair parts by the pair weights, adds the
other parts and the regularisers, and returns the total with every part named for the log.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from xmbench.config import TrainConfig
from xmbench.models import capabilities
from xmbench.registry import LOSSES, REGULARIZERS


@dataclass
class Batch:
    """Model-ready inputs of each modality, and the item (dataset row) of every row of each."""

    inputs: dict[str, dict[str, torch.Tensor]]
    item_ids: dict[str, torch.Tensor]  # modality → (rows,) item index; equal ids are the same item
    extras: dict = field(default_factory=dict)  # what augmentations pass along the batch (the waveforms they edit)
    # modality → (items,) bool when some items lack a modality: its rows are the items marked True, in order
    present: dict[str, torch.Tensor] | None = None

    def __len__(self) -> int:
        if self.present:
            return len(next(iter(self.present.values())))
        return len(next(iter(self.item_ids.values())))

    def rank_slice(self, rank: int, world: int) -> Batch:
        """This rank's share of a global batch: rows rank·B … (rank+1)·B of every modality."""
        if self.present:
            raise ValueError("items that lack a modality (data.missing) train on one rank: the ranks' rows "
                             "would not line up")
        size = len(self) // world
        rows = slice(rank * size, (rank + 1) * size)
        return Batch({m: {k: v[rows] for k, v in x.items()} for m, x in self.inputs.items()},
                     {m: ids[rows] for m, ids in self.item_ids.items()})


@dataclass
class LossInput:
    """Everything a loss may use. Row i of each modality's embeddings is item `item_ids[m][i]`."""

    embeddings: dict[str, torch.Tensor]
    item_ids: dict[str, torch.Tensor]
    logit_scales: dict[str, torch.Tensor]  # pair name "a-b" → scale (1 / temperature)
    pairs: list[tuple[str, str]]
    model: Any = None
    step: int = 0
    progress: float = 0.0  # step / total steps, for schedules inside a loss (curricula)
    teacher: dict[str, torch.Tensor] | None = None  # a teacher's embeddings of the same rows (distillation)
    local_rows: slice | None = None  # on several ranks with the local loss: this rank's rows of the global batch
    parameters: dict[str, torch.Tensor] = field(default_factory=dict)  # the loss's own learnable values (a bias)
    states: dict[str, torch.Tensor] | None = None  # the rows' states, for a model whose scores read them

    def logits(self, a: str, b: str, rows: slice | None = None) -> torch.Tensor:
        """Scaled similarities of the a-rows (all, or `rows`) with every b-row: the model's `score`, else dot products."""
        scale = self.logit_scales[f"{a}-{b}" if f"{a}-{b}" in self.logit_scales else f"{b}-{a}"]
        if capabilities.can_score(self.model):
            return scale * self.similarity(a, b, rows)
        queries = self.embeddings[a] if rows is None else self.embeddings[a][rows]
        return scale * queries @ self.embeddings[b].T  # (scale·a)·bᵀ: the order CLIP computes in

    def similarity(self, a: str, b: str, rows: slice | None = None) -> torch.Tensor:
        """Unscaled similarities of the a-rows (all, or `rows`) with every b-row, the rows' states passed
        to a model that reads them: the model's `score`, else dot products."""
        queries = self.embeddings[a] if rows is None else self.embeddings[a][rows]
        states = None
        if self.states:
            states = (self.states[a] if rows is None else self.states[a][rows], self.states[b])
        return capabilities.similarity(self.model, a, queries, b, self.embeddings[b], states)


@dataclass
class LossOutput:
    """A loss's named parts: a part named after a pair ("text-image") is weighed by the pair weights,
    any other part is added as it is. `per_item` (rows,) is each item's loss, detached, for samplers."""

    parts: dict[str, torch.Tensor]
    per_item: torch.Tensor | None = None


@dataclass
class StepOutput:
    total: torch.Tensor
    parts: dict[str, torch.Tensor]  # loss parts by name, regularisers as "reg/<name>"
    per_item: torch.Tensor | None = None
    embeddings: dict[str, torch.Tensor] = field(default_factory=dict)


class TrainingStep:
    """Forward and objective of a batch for one model and one TrainConfig.

    `pairs` and `pair_weights` are attributes that callbacks may change between steps
    (curricula, modality masks); `teacher` maps a Batch to a teacher's embeddings.
    """

    def __init__(self, model, cfg: TrainConfig, pairs: list[tuple[str, str]], teacher=None, ddp=None, ranks=None):
        self.model = model
        self.ddp, self.ranks, self.local_loss = ddp, ranks, cfg.ddp_loss == "local"
        self.loss = LOSSES.bind(cfg.loss)
        self.loss_parameters = _owned_parameters(LOSSES.entry(cfg.loss.name), cfg.loss.options,
                                                 capabilities.device_of(model))
        self.regularizers = [(choice.name, REGULARIZERS.bind(choice)) for choice in cfg.regularizers]
        self.pairs = list(pairs)
        self.pair_weights = {f"{a}-{b}": cfg.pair_weights.get(f"{a}-{b}", 1.0) for a, b in pairs}
        self.teacher = teacher

    @property
    def modalities(self) -> list[str]:
        return sorted({m for pair in self.pairs for m in pair})

    def __call__(self, batch: Batch, step: int = 0, progress: float = 0.0) -> StepOutput:
        """Encode the batch (each modality once) and return the objective."""
        if self.ddp is not None:
            return self._distributed(batch, step, progress)
        embeddings, states = capabilities.embeddings_and_states(
            {m: capabilities.encode_states(self.model, m, batch.inputs[m]) for m in self.modalities})
        capabilities.check_same_width(self.model, embeddings)
        teacher = self.teacher(batch) if self.teacher else None
        if batch.present:
            return self.objective_by_pair(embeddings, batch.item_ids, batch.present, step, progress, teacher, states)
        return self.objective(embeddings, batch.item_ids, step, progress, teacher, states=states)

    def cached(self, micro: list[Batch], step: int = 0, progress: float = 0.0):
        """GradCache (Gao et al. 2021): the objective over every micro-batch at once, in bounded memory.

        Every micro-batch is embedded without gradients; the objective of the whole batch is taken
        on those embeddings as leaves; its backward gives each embedding its gradient; then each
        micro-batch is encoded again, with gradients, and back-propagated from its embeddings'
        gradient. The parameters get exactly the gradient of one big batch, while activations are
        held for one micro-batch at a time. Returns (the objective, backward(scale)).
        """
        if self.ddp is not None:
            raise ValueError("train.accumulation_mode = 'cached' does not combine with several ranks yet")
        if capabilities.has_states(self.model):
            raise ValueError("train.accumulation_mode = 'cached' caches embeddings only; a model whose scores read "
                             "the rows' states (model.fusion = pre_projection) trains with 'plain' accumulation")
        with torch.no_grad():
            encoded = [{m: capabilities.encode(self.model, m, b.inputs[m]) for m in self.modalities} for b in micro]
        embeddings = {m: torch.cat([e[m] for e in encoded]).requires_grad_() for m in self.modalities}
        capabilities.check_same_width(self.model, embeddings)
        item_ids = {m: torch.cat([b.item_ids[m] for b in micro]) for m in self.modalities}
        teacher = None
        if self.teacher:
            taught = [self.teacher(b) for b in micro]
            teacher = {m: torch.cat([t[m] for t in taught]) for m in taught[0]}
        out = self.objective(embeddings, item_ids, step, progress, teacher)

        def backward(scale=lambda loss: loss) -> None:
            scale(out.total).backward()  # into the embedding leaves (and the temperature, the loss's own values)
            start = 0
            for batch in micro:
                rows = slice(start, start + len(batch))
                again = {m: capabilities.encode(self.model, m, batch.inputs[m]) for m in self.modalities}
                torch.stack([(again[m] * embeddings[m].grad[rows]).sum() for m in self.modalities]).sum().backward()
                start = rows.stop

        return out, backward

    def _distributed(self, batch: Batch, step: int, progress: float) -> StepOutput:
        """This rank's rows encoded under DDP, then the objective over the global batch gathered from every rank."""
        from xmbench.train import distributed

        if capabilities.has_states(self.model):
            raise ValueError("several ranks gather embeddings only; a model whose scores read the rows' states "
                             "(model.fusion = pre_projection) trains on one rank")
        local, scales = self.ddp({m: batch.inputs[m] for m in self.modalities}, self.pairs)
        capabilities.check_same_width(self.model, local)
        embeddings = {m: distributed.gather(e) for m, e in local.items()}
        item_ids = {m: distributed.gather_plain(batch.item_ids[m]) for m in self.modalities}
        teacher = self.teacher(batch) if self.teacher else None
        if teacher is not None:
            teacher = {m: distributed.gather_plain(e) for m, e in teacher.items()}
        size = len(batch)
        rows = slice(self.ranks.rank * size, (self.ranks.rank + 1) * size) if self.local_loss else None
        return self.objective(embeddings, item_ids, step, progress, teacher, scales, rows)

    def objective(self, embeddings: dict[str, torch.Tensor], item_ids: dict[str, torch.Tensor], step: int = 0,
                  progress: float = 0.0, teacher=None, scales=None, local_rows: slice | None = None,
                  states: dict[str, torch.Tensor] | None = None) -> StepOutput:
        """The loss over encoded rows (and their states, for a model that reads them), weighed and
        regularised: validation calls this on its embeddings."""
        scales = scales if scales is not None else capabilities.logit_scales(self.model, self.pairs)
        inputs = LossInput(embeddings, item_ids, scales, self.pairs, self.model, step, progress, teacher, local_rows,
                           dict(self.loss_parameters), states)
        out = self.loss(inputs)
        total = self._weighted(out.parts)
        parts = dict(out.parts)
        for name, regularizer in self.regularizers:
            value = regularizer(inputs)  # already multiplied by its weight option
            parts[f"reg/{name}"] = value
            total = total + value
        return StepOutput(total, parts, out.per_item, embeddings)

    def objective_by_pair(self, embeddings: dict[str, torch.Tensor], item_ids: dict[str, torch.Tensor],
                          present: dict[str, torch.Tensor], step: int = 0, progress: float = 0.0, teacher=None,
                          states: dict[str, torch.Tensor] | None = None) -> StepOutput:
        """The objective of a batch whose items lack some modalities (`present`: modality → bool per item).

        Each pair is taken over the items that have both its modalities, so that row i of one side
        is row i of the other again (what pairwise losses assume); the loss and the regularisers see
        that pair alone. Pair parts are weighed as always; any other part is the mean over the pairs
        that had rows. `per_item` is each item's mean over its pairs (NaN for an item in none).
        """
        scales = capabilities.logit_scales(self.model, self.pairs)
        first = next(iter(embeddings.values()))
        n_items = len(next(iter(present.values())))
        parts, others = {}, {}
        per_item, covered = torch.zeros(n_items, device=first.device), torch.zeros(n_items, device=first.device)
        for a, b in self.pairs:
            both = present[a] & present[b]
            if not both.any():
                continue
            keep = {m: _rows_with(both, present[m], len(embeddings[m]), m).to(first.device) for m in (a, b)}

            def view(values, keep=keep):
                return None if values is None else {m: values[m][keep[m]] for m in keep if m in values}

            inputs = LossInput(view(embeddings), view(item_ids), scales, [(a, b)], self.model, step, progress,
                               view(teacher), None, dict(self.loss_parameters), view(states))
            out = self.loss(inputs)
            for name, value in out.parts.items():
                if name in self.pair_weights:
                    parts[name] = value
                else:
                    others.setdefault(name, []).append(value)
            for name, regularizer in self.regularizers:
                others.setdefault(f"reg/{name}", []).append(regularizer(inputs))
            if out.per_item is not None:
                rows = both.to(first.device)
                per_item[rows] += out.per_item
                covered[rows] += 1
        parts.update({name: torch.stack(values).mean() for name, values in others.items()})
        total = self._weighted(parts) if parts else torch.zeros((), device=first.device)  # nothing to pair: no step
        mean = torch.where(covered > 0, per_item / covered.clamp(min=1), torch.full_like(per_item, float("nan")))
        return StepOutput(total, parts, mean if covered.any() else None, embeddings)

    def _weighted(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        """Weighted mean of the pair parts plus the other parts.

        Written as mean(w·part)·n/Σw so that equal weights of 1 compute exactly the plain mean.
        """
        pair_parts = [(self.pair_weights[name], value) for name, value in parts.items() if name in self.pair_weights]
        other = [value for name, value in parts.items() if name not in self.pair_weights]
        weights = [w for w, _ in pair_parts]
        total = torch.stack([w * v for w, v in pair_parts]).mean() * (len(weights) / sum(weights)) if pair_parts else 0.0
        for value in other:
            total = total + value
        return total


def _rows_with(both: torch.Tensor, present: torch.Tensor, n_rows: int, modality: str) -> torch.Tensor:
    """Which of a modality's rows (its items marked present, in order) belong to items marked `both`."""
    if int(present.sum()) != n_rows:
        raise ValueError(f"the batch holds {n_rows} {modality} rows for {int(present.sum())} items that have "
                         f"{modality}: an augmentation that adds rows (mix_negatives) cannot take items that lack "
                         f"a modality (data.missing)")
    return both[present]


def _owned_parameters(entry, options, device) -> torch.nn.ParameterDict:
    """The learnable scalars a loss declares (`parameters=` at registration), as parameters on the model's device."""
    initial = entry.parameters(options) if entry.parameters else {}
    return torch.nn.ParameterDict({name: torch.nn.Parameter(torch.tensor(float(value), device=device))
                                   for name, value in initial.items()})
