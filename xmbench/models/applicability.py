"""Which config keys and techniques reach an opaque `model.factory` model: one table, and the checks it drives.

A user model enters as a whole (`model.factory = "pkg.mod:fn"`): xmbench sees `modalities`, `encode`
and whatever optional capabilities it offers (xmbench.models.model), never towers, heads or a
temperature of its own building. A key that configures the reference model's structure would
therefore be recorded, compared and reported as if it had been applied while the model never saw
it. Each row of `TABLE` says, from the code that applies the key, whether it reaches such a model:

- APPLIES: training, data, evaluation and profiling act on `encode`'s embeddings, the model's
  parameters or its inputs, whatever built the model;
- NEEDS: it acts through a capability that only the built model can show (`components()`, layered
  tower parameters, `projection_weights()`, …): `xmbench validate` (preflight) builds the model and
  refuses the key when the capability is missing (`missing_capabilities`);
- NEVER: only the reference model's builder (or the foundation stage) reads it, so
  `xmbench.config.validate` refuses it before anything runs (`refusals`).

A key is "set" when it differs from xmbench's defaults (`xmbench.schema.changes`, the config id's
notion), so the per-modality tower defaults (minilm, vit, ast) are never counted as set.
`python -m xmbench.models.applicability --markdown` prints the table for the README.
"""
from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatch
from typing import Any, Literal

from xmbench.config import MODALITIES, RunConfig, TowerConfig
from xmbench.errors import ConfigError
from xmbench.registry import TOWERS, Choice
from xmbench.schema import changes

Kind = Literal["applies", "needs", "never"]
TECHNIQUE_LISTS = ("train.callbacks", "train.regularizers", "transforms")  # rows per technique, not per key


@dataclass(frozen=True)
class Row:
    """One key (or one technique of a list key: `train.callbacks[unfreeze_top]`) and whether it reaches the model.

    `needs` names the capability a NEEDS row acts through; `probe(model, value)` returns why the built
    model lacks it (None when it has it). `reason` is a clause: "<key>: <reason>; …" reads as a sentence.
    """

    key: str
    kind: Kind
    reason: str
    needs: str = ""
    probe: Callable[[Any, Any], str | None] | None = None


# --- probes of NEEDS rows: each asks the built model, and says what it lacks (None: nothing) -------

def _components(model) -> str:
    """The components of the model's parameters, as the optimizer's groups name them."""
    from xmbench.train.optim import ParameterGroups

    groups = ParameterGroups(model, {})
    return f"its parameters' components: {', '.join(sorted({groups.component_of(n) for n, _ in groups.named()})) or 'none'}"


def _components_match(model, lr_scale: dict) -> str | None:
    from xmbench.train.optim import ParameterGroups

    groups = ParameterGroups(model, {})
    known = {groups.component_of(n) for n, _ in groups.named()}
    unmatched = [p for p in lr_scale if not any(fnmatch(c, p) for c in known)]
    return f"'{unmatched[0]}' matches none of {_components(model)}" if unmatched else None


def _layered_towers(model, decay: float) -> str | None:
    from xmbench.train.optim import ParameterGroups

    return None if ParameterGroups(model, {}, decay).depth else _components(model)


def _unfreezable(model, choice: Choice) -> str | None:
    from xmbench.train.callbacks._unfreeze import tower_layers

    try:
        tower_layers(model, choice.options.towers)
    except ConfigError:
        return _components(model)
    return None


def _has_method(name: str) -> Callable[[Any, Any], str | None]:
    def probe(model, _value) -> str | None:
        return None if callable(getattr(model, name, None)) else f"{type(model).__name__} has no `{name}`"

    return probe


def _movable(model, device: str) -> str | None:
    import torch

    wants_gpu = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if not wants_gpu or callable(getattr(model, "to", None)):
        return None
    return f"{type(model).__name__} has no `to`, so it would stay on the CPU"


def _projections(model, _choice) -> str | None:
    from xmbench.models import capabilities

    return None if capabilities.projection_weights(model) else f"{type(model).__name__} offers none"


def _mergeable(model, _choice) -> str | None:
    from peft import PeftModel

    from xmbench.models.adapters._layers import GatedLoraLinear

    modules = getattr(model, "modules", None)
    if callable(modules) and any(isinstance(m, (PeftModel, GatedLoraLinear)) for m in modules()):
        return None
    return f"{type(model).__name__} holds none"


def _quantizable(model, choice: Choice) -> str | None:
    from xmbench.models.transforms.quantize import chosen_components

    try:
        chosen_components(model, choice.options.components)
    except ConfigError as exc:
        return str(exc).partition(": ")[2]
    return None


LAYERED_TOWERS = "`tower/<m>` components (`component_of`) whose parameter names hold `.layer.N.` or `.layers.N.`"
REFERENCE_TOWER = "the reference model builds its towers from it"
REGISTERED_TOWERS = 'model.factory = "reference" and model.<m>.arch naming a registered tower'

TABLE: tuple[Row, ...] = (
    Row("data.*", "applies", "the data is loaded and preprocessed before any model and reaches it only as `encode`'s inputs"),
    Row("model.factory", "applies", "it names the model itself"),
    Row("model.embed_dim", "never", "the reference model's projection heads map into a shared space of this width"),
    Row("model.head", "never", "a projection head is built on the reference model's towers"),
    Row("model.temperature", "never", "the temperature technique is built into the reference model (a factory model's own "
                                      "is its `logit_scale` or `logit_scales`)"),
    Row("model.fusion", "never", "a fusion re-ranker wraps the reference model (its embeddings and its towers' outputs)"),
    Row("model.pretrained_projection", "never", "it decides whether the reference model's heads start from the foundation's"),
    Row("model.<m>.arch", "never", f"it names the registered tower of that modality; {REFERENCE_TOWER}"),
    Row("model.<m>.size", "never", f"it sizes the registered tower of that modality; {REFERENCE_TOWER}"),
    Row("model.<m>.dropout", "never", f"it is the dropout of that modality's tower backbone; {REFERENCE_TOWER}"),
    Row("model.pretrained", "never", "a CLIP or CLAP checkpoint gives the reference model two towers, their heads and its "
                                     "logit scale"),
    Row("model.<m>.path", "never", f"it is the checkpoint folder of an `arch = \"hf\"` tower; {REFERENCE_TOWER}"),
    Row("model.<m>.pooling", "never", f"it pools the token states of an `arch = \"hf\"` tower; {REFERENCE_TOWER}"),
    Row("model.<m>.processor", "never", f"it preprocesses the inputs of an `arch = \"hf\"` tower; {REFERENCE_TOWER}"),
    Row("model.<m>.tower", "never", f"it builds that modality's tower from code; {REFERENCE_TOWER}"),
    Row("model.<m>.adapter", "never", "an adapter is applied to the reference model's tower backbones"),
    Row("model.<m>.head", "never", "this tower's own projection head is built on the reference model's tower"),
    Row("train.steps", "applies", "the engine's loop trains whatever parameters the model has"),
    Row("train.batch_size", "applies", "batches are drawn from the data before encoding"),
    Row("train.accumulation", "applies", "micro-batches are encoded one by one and their gradients summed"),
    Row("train.views_per_item", "applies", "extra caption rows are inputs, matched by item id in the loss"),
    Row("train.accumulation_mode", "applies", "GradCache re-encodes each micro-batch through `encode`"),
    Row("train.lr", "applies", "the optimizer's base rate, for every trainable parameter"),
    Row("train.lr_scale", "needs", "its multipliers apply to the parameter groups of the components they name",
        "parameters whose components (`component_of`, else the first part of each name) match every pattern",
        _components_match),
    Row("train.layer_decay", "needs", "it decays the learning rate layer by layer within towers", LAYERED_TOWERS,
        _layered_towers),
    Row("train.weight_decay", "applies", "AdamW's decay, for every trainable parameter"),
    Row("train.warmup_steps", "applies", "the schedule scales every parameter group's rate"),
    Row("train.schedule", "applies", "the schedule scales every parameter group's rate"),
    Row("train.grad_clip", "applies", "clipping acts on the gradients of every trainable parameter"),
    Row("train.loss", "applies", "every loss reads `encode`'s embeddings, item ids and the logit scales (the model's own, "
                                 "else CLIP's fixed 1/0.07)"),
    Row("train.pairs", "applies", "pairs of the modalities that both the data and the model have are trained"),
    Row("train.pair_weights", "applies", "they weigh the loss's pair parts"),
    Row("train.sampler", "applies", "samplers see the training split and each item's loss"),
    Row("train.augment", "applies", "augmentations change the batch's inputs before `encode`"),
    Row("train.precision", "never", "a precision policy is applied inside the reference model's `encode`, per component "
                                    "(tower/<m>, head/<m>)"),
    Row("train.teacher", "applies", "the teacher's embeddings reach the loss and the regularisers beside the student's"),
    Row("train.eval_every", "applies", "validation points encode the validation split through `encode`"),
    Row("train.checkpoint_every", "applies", "checkpoints hold the model's parameters, the optimizer and the sampler"),
    Row("train.threads", "applies", "torch's thread count holds for any model"),
    Row("train.feature_cache_mb", "needs", "the cache stands in for the model's frozen towers",
        "`frozen_feature_cache(folder, max_mb)`", _has_method("frozen_feature_cache")),
    Row("train.device", "needs", "the model is moved to the device", "`to(device)` (any `nn.Module`)", _movable),
    Row("train.ddp_loss", "applies", "it chooses which rows of the gathered embeddings each rank's loss takes"),
    Row("train.regularizers[decorrelation]", "applies", "it reads `encode`'s embeddings"),
    Row("train.regularizers[distill_features]", "applies", "it compares `encode`'s embeddings with the teacher's"),
    Row("train.regularizers[distill_logits]", "applies", "it compares the model's similarities with the teacher's"),
    Row("train.regularizers[orthogonality]", "needs", "it penalises the projection heads' weights (0 without them)",
        "`projection_weights()`", _projections),
    Row("train.callbacks[adaptive_pair_weights]", "applies", "it reweighs the pairs from validation R@1"),
    Row("train.callbacks[ema_teacher]", "applies", "it averages the model's trainable parameters and encodes with them"),
    Row("train.callbacks[mine_negatives]", "applies", "it encodes the training split with the current model"),
    Row("train.callbacks[modality_dropout]", "applies", "it masks the pairs of a modality at a step"),
    Row("train.callbacks[pair_curriculum]", "applies", "it chooses which pairs train at each step"),
    Row("train.callbacks[pair_weight_schedule]", "applies", "it sets pair weights and the batch size at each step"),
    Row("train.callbacks[stability]", "applies", "it watches gradients, the loss scale and (per `components()`, where "
                                                 "the model names them) activations"),
    Row("train.callbacks[unfreeze_top]", "needs", "it unfreezes the top transformer layers of the model's towers",
        LAYERED_TOWERS, _unfreezable),
    Row("train.callbacks[progressive_unfreeze]", "needs", "it unfreezes the model's towers layer by layer from the top",
        LAYERED_TOWERS, _unfreezable),
    Row("foundation.enabled", "applies", "false (no pretraining) is what a factory model gets anyway"),
    Row("foundation.*", "never", "the foundation stage pretrains the reference model's towers, never a factory "
                                 "model"),
    Row("eval.*", "applies", "evaluation ranks `encode`'s embeddings (or the model's `score`)"),
    Row("profile.*", "applies", "the probes time and measure any model; per-component parts follow `components()` and "
                                "`component_of`, shape scaling the model's `resized` twin where it offers one"),
    Row("plugins", "applies", "plugin modules are imported so that the techniques they register resolve (each keeps its "
                              "own row)"),
    Row("transforms[merge]", "needs", "it folds low-rank adapters into their base weights (without any it changes nothing)",
        "peft (or xmbench's gated LoRA) adapter layers among its modules", _mergeable),
    Row("transforms[quantize]", "needs", "it quantises the model's named components",
        "`components()` matching the transform's `components` patterns", _quantizable),
)
BY_KEY = {row.key: row for row in TABLE}


def towers_hint() -> str:
    """How to get these techniques with one's own encoder: the reference model built from towers."""
    ways = ['model.<m>.arch = "hf"'] if "hf" in TOWERS else []
    if "tower" in {f.name for f in dataclasses.fields(TowerConfig)}:
        ways.append("model.<m>.tower")
    return f"build the model from towers ({' / '.join(ways) or REGISTERED_TOWERS})"


# --- what a config sets, and each set key's row ---------------------------------------------------

def set_keys(config: RunConfig) -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every leaf that differs from the defaults; a technique list gives one
    entry per technique (`train.callbacks[unfreeze_top]`, its Choice)."""
    for key, value in _leaves(changes(config, RunConfig()), config, ""):
        if key in TECHNIQUE_LISTS:
            yield from ((f"{key}[{choice.name}]", choice) for choice in value)
        else:
            yield key, value


def _leaves(tree: dict, section: Any, path: str) -> Iterator[tuple[str, Any]]:
    for name, sub in tree.items():
        value = getattr(section, name)
        if dataclasses.is_dataclass(value) and not isinstance(value, Choice):
            yield from _leaves(sub, value, f"{path}{name}.")
        else:
            yield f"{path}{name}", value


def row_of(key: str) -> Row | None:
    """The row of a dotted key (a modality written <m>): its own, else the nearest enclosing key's or `section.*` row."""
    parts = key.split(".")
    if len(parts) > 2 and parts[0] == "model" and parts[1] in MODALITIES:
        parts[1] = "<m>"
    for end in range(len(parts), 0, -1):
        head = ".".join(parts[:end])
        for candidate in (head, f"{head}.*") if end < len(parts) else (head,):
            if candidate in BY_KEY:
                return BY_KEY[candidate]
    return None


def _opaque(config: RunConfig) -> str:
    return f"model.factory = {config.model.factory!r} is an opaque model, so it would be measured as if applied"


def refusals(config: RunConfig) -> list[str]:
    """Every key a factory config sets that never reaches its model, each as "key: why … Remove the key, or …"."""
    if config.model.factory == "reference":
        return []
    refused = [(key, row) for key, _ in set_keys(config) if (row := row_of(key)) and row.kind == "never"]
    return [f"{key}: {row.reason}; {_opaque(config)}. Remove the key, or {towers_hint()}" for key, row in refused]


def check_factory(config: RunConfig) -> None:
    """The config validation's step: a ConfigError naming the first refused key (and the others set)."""
    refused = refusals(config)
    if refused:
        others = [message.partition(": ")[0] for message in refused[1:]]
        raise ConfigError(refused[0] + (f" (also set, and never applied to it: {', '.join(others)})" if others else ""))


def capability_keys(config: RunConfig) -> list[tuple[str, Any]]:
    """The set keys of a factory config whose rows need a capability of the built model."""
    if config.model.factory == "reference":
        return []
    return [(key, value) for key, value in set_keys(config) if (row := row_of(key)) and row.kind == "needs"]


def missing_capabilities(config: RunConfig, model) -> list[tuple[str, str, str]]:
    """(key, what it does and why this model cannot take it, the fix) of each set key needing a capability
    that the built factory model lacks: preflight's check."""
    found = []
    for key, value in capability_keys(config):
        row = row_of(key)
        detail = row.probe(model, value)
        if detail is not None:
            found.append((key, f"{row.reason}; it needs {row.needs}, which model.factory = {config.model.factory!r} "
                               f"lacks ({detail})", f"remove the key, or give the model {row.needs}"))
    return found


# --- the README's table -----------------------------------------------------------------------------

VERDICT = {"applies": "applies", "needs": "only with {needs} (else refused)", "never": "never: refused"}


def markdown() -> str:
    """The table as markdown: what the README shows under "Which techniques apply to an opaque model"."""
    lines = ["| key or technique | with an opaque `model.factory` model | why |", "| --- | --- | --- |"]
    for row in TABLE:
        lines.append(f"| `{row.key}` | {VERDICT[row.kind].format(needs=row.needs)} | {row.reason} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv != ["--markdown"]:
        print("usage: python -m xmbench.models.applicability --markdown", file=sys.stderr)
        return 2
    print(markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
