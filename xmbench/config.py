"""Every config section as a dataclass; `resolve` layers defaults ← base ← overrides and validates.

Field types say what a key accepts (see xmbench.schema): ranges, choices, registry names and
techniques with their own options. Validation is strict: unknown keys (with a did-you-mean),
wrong types and out-of-range values fail with the dotted key path, so a suite is checked
completely before anything runs.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from xmbench.errors import ConfigError
from xmbench.plugins import import_plugins, plugin_sources
from xmbench.registry import Choice
from xmbench.schema import NON_NEGATIVE, POSITIVE, PROBABILITY, Named, Range, changes, load, merge, technique, to_tree

MODALITIES = ("text", "image", "audio")
DIRECTIONS = ("t2i", "i2t", "t2a", "a2t", "i2a", "a2i")
MODALITY_LETTER = {"text": "t", "image": "i", "audio": "a"}
PAIRS = ("text-image", "text-audio", "image-audio")
Pair = Literal["text-image", "text-audio", "image-audio"]
Direction = Literal["t2i", "i2t", "t2a", "a2t", "i2a", "a2i"]
PositiveInt = Annotated[int, POSITIVE]
Count = Annotated[int, NON_NEGATIVE]

# Bump when a change makes the same config mean something else (a default value changed, a
# recipe changed): every config id changes with it. Adding an option with a default does not.
CONFIG_SCHEMA = 2


@dataclass
class DataConfig:
    """Which dataset, which split sizes, and the built-in set's difficulty knobs."""

    name: Annotated[str, Named("dataset")] = "synthetic"
    domain: Literal["source", "target"] = "target"  # synthetic: source (pretraining) | target (adaptation)
    manifest: str = ""  # manifest dataset: path to a .jsonl or .csv file
    n_train: PositiveInt = 1024
    n_val: Count = 64
    n_test: PositiveInt = 256
    max_objects: PositiveInt = 3
    hard_negative_rate: Annotated[float, PROBABILITY] = 0.35  # share of items derived from the previous one
    noise: Annotated[float, NON_NEGATIVE] = 1.0  # multiplies image and audio noise
    clutter: Annotated[float, NON_NEGATIVE] = 1.0  # multiplies target-domain distractors
    image_size: PositiveInt = 64
    sample_rate: PositiveInt = 16000
    audio_seconds: Annotated[float, POSITIVE] = 1.5
    n_mels: PositiveInt = 64
    max_text_tokens: PositiveInt = 32
    seed: int = 0  # the data seed; the run seed only drives training
    # built-in set: the share of training items without each modality (e.g. { image = 0.3 }: 30% are
    # text and audio only), disjoint shares so every item keeps two; val and test stay complete
    missing: dict[str, Annotated[float, PROBABILITY]] = field(default_factory=dict)
    # modality → where its preprocessing comes from: a Hugging Face processor folder, or
    # "factory:pkg.mod:fn" (a code tower's own). Filled from the model's towers by `validate`
    # (xmbench.data.processors); unset modalities use the built-in preprocessing.
    processors: dict[str, str] = field(default_factory=dict)


@dataclass
class TowerCode:
    """A tower written in code: `factory` returns its backbone, hidden size and preprocessing."""

    factory: str = ""  # "package.module:function", called with (modality, RunConfig): see xmbench.models.code_tower


@dataclass
class TowerConfig:
    """One modality's encoder: a registered architecture at a size, and its adapter (a technique).

    `arch = "hf"` loads any local Hugging Face checkpoint folder (`path`), pooled as `pooling` says
    and preprocessed by the processor saved beside it (or `processor`); `tower = { factory = ... }`
    builds it from the user's code. Either way adapters, heads, freezing and transforms apply.
    """

    arch: Annotated[str, Named("tower")] = "minilm"
    size: Literal["small", "tiny"] = "small"  # small (reference) | tiny (tests)
    path: str = ""  # arch = "hf": the checkpoint folder (config.json and weights), loaded offline
    # arch = "hf": how token states become one vector; auto: the family's own (xmbench.models.hf_tower)
    pooling: Literal["auto", "cls", "mean", "pooler", "last"] = "auto"
    processor: str = ""  # arch = "hf": the processor folder when it is not saved beside the weights
    tower: TowerCode | None = None  # a tower from code; then arch, size and path are not used
    # Backbone dropout. 0 by default: it regularises little under LoRA and cost 9% of the
    # reference step on a 2-core CPU (measured), also forcing the slower attention kernel.
    dropout: Annotated[float, PROBABILITY] = 0.0
    adapter: Choice = technique("adapter", "lora")
    head: Choice | None = field(default=None, metadata={"kind": "head"})  # this tower's own head; unset: model.head


@dataclass
class PretrainedConfig:
    """A local CLIP or CLAP checkpoint as the starting point of two towers (xmbench.models.dual_encoder)."""

    path: str = ""  # the checkpoint folder (CLIPModel / ClapModel, with its processor)
    kind: Literal["clip", "clap"] = "clip"


@dataclass
class ModelConfig:
    """The cross-modal model: three towers, projection heads, a learnable temperature."""

    factory: str = "reference"  # or "package.module:function" for a user model
    embed_dim: PositiveInt = 512
    head: Choice = technique("head", "linear")
    temperature: Choice = technique("temperature", "learnable")  # init 0.07, clamped at 0.01 as CLIP
    fusion: Choice | None = field(default=None, metadata={"kind": "fusion"})  # a cross-modal re-ranker on top
    # heads and temperature start from the foundation's where their shapes match (the reference
    # projection); false: they start fresh as any other head does (the control of head and size variants)
    pretrained_projection: bool = True
    # a pretrained dual encoder (CLIP, CLAP) giving two towers, their projection heads and logit scale
    pretrained: PretrainedConfig | None = None
    text: TowerConfig = field(default_factory=lambda: TowerConfig(arch="minilm"))
    image: TowerConfig = field(default_factory=lambda: TowerConfig(arch="vit"))
    audio: TowerConfig = field(default_factory=lambda: TowerConfig(arch="ast"))


@dataclass
class TrainConfig:
    """The adaptation run of the training engine and its policies (each a registered technique)."""

    steps: Count = 100
    batch_size: PositiveInt = 32  # items per micro-batch
    accumulation: PositiveInt = 1  # micro-batches per optimizer step (gradient accumulation)
    # rows per drawn item in a batch, each text row another caption: several positives per item
    # (supervised contrastive losses see them; InfoNCE would count them as negatives)
    views_per_item: PositiveInt = 1
    # plain: the loss of each micro-batch on its own (in-batch negatives of that micro-batch); cached
    # (GradCache): every micro-batch embedded without gradients, the loss over the whole batch, then
    # each micro-batch re-encoded with the loss's gradient — the gradients of one big batch
    accumulation_mode: Literal["plain", "cached"] = "plain"
    lr: Annotated[float, NON_NEGATIVE] = 1e-3
    # lr multipliers of parameter groups, by component pattern: {"tower/*" = 0.5, temperature = 0}.
    # Components: tower/<modality>, head/<modality>, temperature (the reference model's names).
    lr_scale: dict[str, Annotated[float, NON_NEGATIVE]] = field(default_factory=dict)
    layer_decay: Annotated[float, Range(0, 1, low_open=True)] = 1.0  # layer-wise lr decay within towers; 1: off
    weight_decay: Annotated[float, NON_NEGATIVE] = 0.01
    warmup_steps: Count = 10
    schedule: Choice = technique("schedule", "cosine")
    grad_clip: Annotated[float, NON_NEGATIVE] = 1.0  # 0 disables clipping
    loss: Choice = technique("loss", "infonce")
    pairs: list[Pair] = field(default_factory=lambda: list(PAIRS))
    pair_weights: dict[str, Annotated[float, NON_NEGATIVE]] = field(default_factory=dict)  # default 1 each
    regularizers: list[Choice] = technique("regularizer")
    sampler: Choice = technique("sampler", "epoch")
    augment: list[Choice] = technique("augmentation")  # on the fly, in order, every training batch
    precision: Choice = technique("precision", "fp32")
    callbacks: list[Choice] = technique("callback")
    teacher: str = ""  # a variant of the same suite whose trained model teaches this one (distillation; same seed)
    eval_every: Count = 50  # steps between validation points of the learning curve; 0: none
    checkpoint_every: Count = 0  # steps between resumable checkpoints; 0: none
    threads: Count = 0  # torch intra-op threads; 0 keeps torch's default
    # MB of features kept per frozen tower (one with nothing to train): each input row is run once
    # and then read from the cache, on disk across runs and seeds (xmbench.models.feature_cache); 0: off
    feature_cache_mb: Annotated[float, NON_NEGATIVE] = 0
    device: Literal["cpu", "cuda", "auto"] = "cpu"  # auto: CUDA when present
    # On several ranks (xmbench run --nproc N): the loss over the global batch on every rank, or each
    # rank's own rows against the global batch (open_clip's local loss; the same gradients in total).
    ddp_loss: Literal["global", "local"] = "global"

    def modality_pairs(self, modalities=MODALITIES) -> list[tuple[str, str]]:
        """The configured pairs as (a, b) tuples, keeping those whose modalities are all present."""
        return [tuple(p.split("-")) for p in self.pairs if set(p.split("-")) <= set(modalities)]


@dataclass
class FoundationConfig:
    """Pretraining of the randomly initialised towers on the source domain, cached on disk."""

    enabled: bool = True
    # The stage pretrains the built-in random towers. A model with a tower from a checkpoint
    # (arch = "hf", model.pretrained) or from code skips it unless this asks for it.
    pretrained_towers: bool = False
    n_train: PositiveInt = 2048
    steps: Count = 300
    batch_size: PositiveInt = 64
    lr: Annotated[float, NON_NEGATIVE] = 1e-3
    warmup_steps: Count = 20
    cache_dir: str = ""  # default: $XMBENCH_CACHE or ~/.cache/xmbench


@dataclass
class EvalConfig:
    """Retrieval evaluation: which split and directions, and the evaluator's chunking."""

    split: Literal["train", "val", "test"] = "test"
    directions: list[Direction] = field(default_factory=lambda: list(DIRECTIONS))
    ks: list[int] = field(default_factory=lambda: [1, 5, 10])
    chunk_size: PositiveInt = 1024  # queries scored at once: memory is chunk_size × gallery
    batch_size: PositiveInt = 64  # items encoded at once; on 2 CPU cores 32–64 beat 256 (cache-resident activations)


@dataclass
class ProfileConfig:
    """Day-1 profiling switches: what the profile stage measures after evaluation.

    The cheap analyses (FLOPs, alignment) are on by default; probes that cost run time or
    touch every step are off until a suite turns them on (`[profile]` or `"profile.x" = true`).
    """

    latency: bool = False  # per-modality encoder and query-path latency at each batch size
    batch_sizes: list[int] = field(default_factory=lambda: [1, 8, 64])
    min_repeats: PositiveInt = 10  # latency: repetitions until both this count…
    min_time_s: Annotated[float, NON_NEGATIVE] = 0.3  # …and this much time are reached, after warmup
    shape_scaling: bool = False  # latency against text length, image resolution, audio duration
    text_lengths: list[int] = field(default_factory=lambda: [8, 16, 32])
    image_sizes: list[int] = field(default_factory=lambda: [32, 64, 96])
    audio_seconds: list[float] = field(default_factory=lambda: [0.5, 1.0, 1.5])
    flops: bool = True  # FLOPs per tower per sample, achieved FLOP/s and MFU of training
    memory: bool = False  # peak memory per phase and the breakdown per tower (instrumented steps)
    grad_norms: bool = False  # gradient norm of each component at every training step
    alignment: bool = True  # pair retrieval matrix, alignment/uniformity, modality gap
    trace: bool = False  # torch.profiler trace of a few training and inference steps
    trace_steps: PositiveInt = 3  # profiled training steps (after one warmup step)
    trace_dir: str = "reports/profiles"
    telemetry: bool = False  # NVML power, energy, utilisation (GPU only; skipped on CPU)
    memory_snapshot: bool = False  # CUDA allocator history for the PyTorch memory viewer (GPU only)


@dataclass
class RunConfig:
    """The complete, resolved configuration of one variant."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    foundation: FoundationConfig = field(default_factory=FoundationConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    transforms: list[Choice] = technique("transform")  # post-training, in order: merge, quantize, …
    # modules whose import registers techniques this config names (a suite's `[suite] plugins`):
    # imported before the tree is loaded, here and in every process that rebuilds the config
    plugins: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return to_tree(self)

    def config_id(self) -> str:
        """A short hash of what this config sets differently from the defaults (and the schema version).

        A changed config gets a new id; a new option added with a default leaves every id as it was.
        With plugins, their source is hashed too: a plugin's code decides what its names mean.
        """
        identity = {"schema": CONFIG_SCHEMA, "changes": changes(self, type(self)())}
        if self.plugins:  # only then: a config without plugins keeps the id it always had
            identity["plugin_sources"] = plugin_sources(self.plugins)
        return hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:12]


def from_dict(values: dict[str, Any]) -> RunConfig:
    """A RunConfig from its plain form (as records store it), validated."""
    return _load_tree(values)


def _load_tree(tree: dict[str, Any]) -> RunConfig:
    """Load and validate a RunConfig tree, importing its plugins first: loading resolves technique names."""
    plugins = tree.get("plugins") if isinstance(tree, dict) else None
    if isinstance(plugins, list) and all(isinstance(p, str) for p in plugins):  # otherwise load names the error
        import_plugins(plugins)
    return validate(load(RunConfig, tree))


def validate(config: RunConfig) -> RunConfig:
    """Cross-field checks the field types cannot express; return the config unchanged."""
    for key in ("batch_sizes", "text_lengths", "image_sizes", "audio_seconds"):
        values = getattr(config.profile, key)
        if not values or min(values) <= 0:
            raise ConfigError(f"profile.{key}: must be a non-empty list of positive numbers, got {values}")
    if not config.eval.ks or config.eval.ks != sorted(set(config.eval.ks)) or min(config.eval.ks) < 1:
        raise ConfigError(f"eval.ks: must be increasing positive integers, got {config.eval.ks}")
    for pair in config.train.pair_weights:
        if pair not in config.train.pairs:
            raise ConfigError(f"train.pair_weights.{pair}: not one of the trained pairs "
                              f"({', '.join(config.train.pairs)})")
    if config.train.pairs and not sum(config.train.pair_weights.get(p, 1.0) for p in config.train.pairs) > 0:
        raise ConfigError("train.pair_weights: at least one trained pair needs a positive weight")
    _check_missing(config)
    _expand_pretrained(config.model)
    _check_towers(config.model)
    _fill_processors(config)
    if config.model.factory != "reference" and ":" not in config.model.factory:
        raise ConfigError(f"model.factory: expected 'reference' or 'package.module:function', "
                          f"got '{config.model.factory}'")
    from xmbench.models.applicability import check_factory  # imported here: it reads this module's dataclasses

    check_factory(config)  # keys that only the reference model takes are refused for a factory model
    return config


PRETRAINED_MODALITIES = {"clip": ("text", "image"), "clap": ("text", "audio")}


def _expand_pretrained(model: ModelConfig) -> None:
    """model.pretrained names the checkpoint of two towers: they become `arch = "hf"` towers of it.

    Idempotent (a stored, already expanded config expands to itself); a tower the suite set to
    something else is a conflict, not silently replaced.
    """
    if model.pretrained is None:
        return
    if not model.pretrained.path:
        raise ConfigError("model.pretrained.path: the folder of the CLIP/CLAP checkpoint is required")
    defaults = ModelConfig()
    for modality in PRETRAINED_MODALITIES[model.pretrained.kind]:
        tower = getattr(model, modality)
        if tower.arch == "hf" and tower.path == model.pretrained.path:
            continue
        if tower.arch != getattr(defaults, modality).arch or tower.path or tower.tower is not None:
            raise ConfigError(f"model.{modality}: model.pretrained ({model.pretrained.kind}) gives the {modality} tower; "
                              f"remove model.{modality}.arch/path/tower, or model.pretrained")
        tower.arch, tower.path = "hf", model.pretrained.path
    shared = _projection_dim(model.pretrained.path)
    if model.embed_dim not in (ModelConfig.embed_dim, shared):
        raise ConfigError(f"model.embed_dim: {model.embed_dim}, but the {model.pretrained.kind} checkpoint's shared space "
                          f"is {shared} wide (its projection_dim); remove model.embed_dim")
    model.embed_dim = shared


def _projection_dim(path: str) -> int:
    """config.json's projection_dim of a dual-encoder checkpoint (read here: parsing a suite imports no torch)."""
    config = Path(path) / "config.json"
    try:
        return int(json.loads(config.read_text())["projection_dim"])
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"model.pretrained.path: {config} has no projection_dim ({type(exc).__name__}: {exc}); "
                          f"is it a CLIP or CLAP checkpoint?") from None


def _check_towers(model: ModelConfig) -> None:
    """Each tower names its source once: a checkpoint folder for arch = "hf", a factory for tower."""
    for modality in MODALITIES:
        tower = getattr(model, modality)
        where = f"model.{modality}"
        if tower.tower is not None:
            if ":" not in tower.tower.factory:
                raise ConfigError(f"{where}.tower.factory: expected 'package.module:function', got '{tower.tower.factory}'")
            if tower.path:
                raise ConfigError(f"{where}: tower (code) and path (a checkpoint) both name the tower; keep one")
        elif tower.arch == "hf" and not tower.path:
            raise ConfigError(f"{where}.path: arch = \"hf\" needs the checkpoint folder (config.json and weights)")
        elif tower.arch != "hf" and (tower.path or tower.processor or tower.pooling != "auto"):
            key = "path" if tower.path else "processor" if tower.processor else "pooling"
            raise ConfigError(f"{where}.{key}: only for arch = \"hf\" (the tower is '{tower.arch}')")


def tower_processor(tower: TowerConfig) -> str:
    """Where a tower's preprocessing comes from ("" for the built-in preprocessing)."""
    if tower.tower is not None:
        return f"factory:{tower.tower.factory}"
    if tower.arch == "hf":
        return tower.processor or tower.path
    return ""


def _fill_processors(config: RunConfig) -> None:
    """data.processors from the towers: the data is decoded and cached as the towers read it."""
    wanted = {m: tower_processor(getattr(config.model, m)) for m in MODALITIES}
    wanted = {m: p for m, p in wanted.items() if p} if config.model.factory == "reference" else {}
    for modality, source in config.data.processors.items():
        if modality not in MODALITIES:
            raise ConfigError(f"data.processors.{modality}: not a modality (one of {', '.join(MODALITIES)})")
        if wanted.get(modality) != source:
            raise ConfigError(f"data.processors.{modality}: '{source}' is not the {modality} tower's processor "
                              f"('{wanted.get(modality, '')}' by model.{modality}); leave data.processors to xmbench")
    config.data.processors = wanted


def _check_missing(config: RunConfig) -> None:
    """data.missing: known modalities, shares that leave every item two modalities, a training path
    that can pair rows per modality pair (one rank, plain accumulation)."""
    missing = config.data.missing
    for modality in missing:
        if modality not in MODALITIES:
            raise ConfigError(f"data.missing.{modality}: not a modality (one of {', '.join(MODALITIES)})")
    if sum(missing.values()) > 1:
        raise ConfigError(f"data.missing: the shares add up to {sum(missing.values()):g}; at most 1, so that no item "
                          f"loses two modalities")
    if any(missing.values()) and config.train.accumulation_mode == "cached":
        raise ConfigError("data.missing with train.accumulation_mode = 'cached': GradCache re-encodes whole "
                          "micro-batches and cannot leave out absent rows; use 'plain'")


def resolve(base: dict[str, Any], *overrides: dict[str, Any] | None) -> RunConfig:
    """Defaults ← base tables ← each layer of overrides, parsed and validated into a RunConfig.

    A layer holds tables and dotted keys (`"model.*.adapter.rank" = 4`), applied in order.
    """
    tree = to_tree(RunConfig())
    for layer in (base, *overrides):
        merge(tree, RunConfig, layer or {})
    return _load_tree(tree)
