"""Every config section as a dataclass; load from plain dicts (TOML), validate, apply overrides.

Validation is strict: unknown keys (with a did-you-mean), wrong types and out-of-range values
fail with the dotted key path, so a suite is checked completely before anything runs.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field
from typing import Any

from xmbench.errors import ConfigError, did_you_mean

MODALITIES = ("text", "image", "audio")
DIRECTIONS = ("t2i", "i2t", "t2a", "a2t", "i2a", "a2i")
MODALITY_LETTER = {"text": "t", "image": "i", "audio": "a"}
PAIRS = ("text-image", "text-audio", "image-audio")


@dataclass
class DataConfig:
    """Which dataset, which split sizes, and the built-in set's difficulty knobs."""

    name: str = "synthetic"  # registry DATASETS: synthetic | manifest
    domain: str = "target"  # synthetic: source (pretraining) | target (adaptation)
    manifest: str = ""  # manifest dataset: path to a .jsonl or .csv file
    n_train: int = 1024
    n_val: int = 64
    n_test: int = 256
    max_objects: int = 3
    hard_negative_rate: float = 0.35  # share of items derived from the previous one by one change
    noise: float = 1.0  # multiplies image and audio noise
    clutter: float = 1.0  # multiplies target-domain distractors
    image_size: int = 64
    sample_rate: int = 16000
    audio_seconds: float = 1.5
    n_mels: int = 64
    max_text_tokens: int = 32
    seed: int = 0  # the data seed; the run seed only drives training


@dataclass
class AdapterConfig:
    """How a tower is tuned: a registered adapter method and its hyperparameters."""

    method: str = "lora"  # registry ADAPTERS
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: list[str] = field(default_factory=lambda: ["query", "value"])


@dataclass
class TowerConfig:
    """One modality's encoder: a registered architecture at a size, and its adapter."""

    arch: str = ""  # registry TOWERS
    size: str = "small"  # small (reference) | tiny (tests)
    # Backbone dropout. 0 by default: it regularises little under LoRA and cost 9% of the
    # reference step on a 2-core CPU (measured), also forcing the slower attention kernel.
    dropout: float = 0.0
    adapter: AdapterConfig = field(default_factory=AdapterConfig)


@dataclass
class ModelConfig:
    """The cross-modal model: three towers, projection heads, a learnable temperature."""

    factory: str = "reference"  # or "package.module:function" for a user model
    embed_dim: int = 512
    head: str = "linear"  # registry HEADS
    temperature: float = 0.07  # initial softmax temperature
    min_temperature: float = 0.01  # clamp, as CLIP clamps its logit scale at 100
    text: TowerConfig = field(default_factory=lambda: TowerConfig(arch="minilm"))
    image: TowerConfig = field(default_factory=lambda: TowerConfig(arch="vit"))
    audio: TowerConfig = field(default_factory=lambda: TowerConfig(arch="ast"))


@dataclass
class TrainConfig:
    """The adaptation run of the training engine."""

    steps: int = 100
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 10
    schedule: str = "cosine"  # registry SCHEDULES
    grad_clip: float = 1.0  # 0 disables clipping
    loss: str = "infonce"  # registry LOSSES
    pairs: list[str] = field(default_factory=lambda: list(PAIRS))
    eval_every: int = 50  # steps between validation points of the learning curve; 0: none
    checkpoint_every: int = 0  # steps between resumable checkpoints; 0: none
    threads: int = 0  # torch intra-op threads; 0 keeps torch's default
    device: str = "cpu"  # cpu | cuda | auto (CUDA when present)

    def modality_pairs(self, modalities=MODALITIES) -> list[tuple[str, str]]:
        """The configured pairs as (a, b) tuples, keeping those whose modalities are all present."""
        return [tuple(p.split("-")) for p in self.pairs if set(p.split("-")) <= set(modalities)]


@dataclass
class FoundationConfig:
    """Pretraining of the randomly initialised towers on the source domain, cached on disk."""

    enabled: bool = True
    n_train: int = 2048
    steps: int = 300
    batch_size: int = 64
    lr: float = 1e-3
    warmup_steps: int = 20
    cache_dir: str = ""  # default: $XMBENCH_CACHE or ~/.cache/xmbench


@dataclass
class EvalConfig:
    """Retrieval evaluation: which split and directions, and the evaluator's chunking."""

    split: str = "test"
    directions: list[str] = field(default_factory=lambda: list(DIRECTIONS))
    ks: list[int] = field(default_factory=lambda: [1, 5, 10])
    chunk_size: int = 1024  # queries scored at once: memory is chunk_size × gallery
    batch_size: int = 64  # items encoded at once; on 2 CPU cores 32–64 beat 256 (cache-resident activations)


@dataclass
class ProfileConfig:
    """Day-1 profiling switches: what the profile stage measures after evaluation.

    The cheap analyses (FLOPs, alignment) are on by default; probes that cost run time or
    touch every step are off until a suite turns them on (`[profile]` or `"profile.x" = true`).
    """

    latency: bool = False  # per-modality encoder and query-path latency at each batch size
    batch_sizes: list[int] = field(default_factory=lambda: [1, 8, 64])
    min_repeats: int = 10  # latency: repetitions until both this count…
    min_time_s: float = 0.3  # …and this much time are reached, after warmup
    shape_scaling: bool = False  # latency against text length, image resolution, audio duration
    text_lengths: list[int] = field(default_factory=lambda: [8, 16, 32])
    image_sizes: list[int] = field(default_factory=lambda: [32, 64, 96])
    audio_seconds: list[float] = field(default_factory=lambda: [0.5, 1.0, 1.5])
    flops: bool = True  # FLOPs per tower per sample, achieved FLOP/s and MFU of training
    memory: bool = False  # peak memory per phase and the breakdown per tower (instrumented steps)
    grad_norms: bool = False  # gradient norm of each component at every training step
    alignment: bool = True  # pair retrieval matrix, alignment/uniformity, modality gap
    trace: bool = False  # torch.profiler trace of a few training and inference steps
    trace_steps: int = 3  # profiled training steps (after one warmup step)
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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def config_id(self) -> str:
        """A short hash of the canonical config: a changed config gets a new id."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]


# Values a key may take, beyond its type; registry names are checked in validate_names.
CHOICES: dict[str, tuple[str, ...]] = {
    "data.domain": ("source", "target"),
    "model.*.size": ("small", "tiny"),
    "eval.split": ("train", "val", "test"),
    "train.device": ("cpu", "cuda", "auto"),
}
POSITIVE = {"data.n_train", "data.n_test", "data.image_size", "data.sample_rate", "data.n_mels",
            "data.max_objects", "data.max_text_tokens", "model.embed_dim", "train.batch_size",
            "foundation.batch_size", "eval.chunk_size", "eval.batch_size", "model.*.adapter.rank",
            "data.audio_seconds", "model.temperature", "model.min_temperature", "profile.min_repeats",
            "profile.trace_steps"}


def from_dict(cls: type, values: dict[str, Any], where: str = "") -> Any:
    """Build dataclass `cls` from a nested dict, failing on unknown keys and wrong types."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where or 'config'}: expected a table, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        path = f"{where}.{key}" if where else key
        if key not in names:
            raise ConfigError(f"{path}: unknown key{did_you_mean(key, names)}; known: {', '.join(names)}")
        kwargs[key] = _convert(hints[key], value, path)
    return cls(**kwargs)


def _convert(hint: Any, value: Any, path: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, path)
    origin = typing.get_origin(hint)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list of {item.__name__}, got {value!r}")
        return [_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool) or not isinstance(value, hint):
        raise ConfigError(f"{path}: expected {hint.__name__}, got {type(value).__name__} {value!r}")
    return value


def validate(config: RunConfig) -> RunConfig:
    """Check value ranges, choices and registry names; return the config unchanged."""
    flat = flatten(config.to_dict())
    for key, value in flat.items():
        pattern = _pattern(key)
        if pattern in CHOICES and value not in CHOICES[pattern]:
            raise ConfigError(f"{key}: '{value}' is not one of {', '.join(CHOICES[pattern])}"
                              f"{did_you_mean(value, CHOICES[pattern])}")
        if pattern in POSITIVE and not value > 0:
            raise ConfigError(f"{key}: must be positive, got {value!r}")
        if key.endswith("dropout") and not 0 <= value < 1:
            raise ConfigError(f"{key}: must be in [0, 1), got {value!r}")
    for direction in config.eval.directions:
        if direction not in DIRECTIONS:
            raise ConfigError(f"eval.directions: unknown direction '{direction}'"
                              f"{did_you_mean(direction, DIRECTIONS)}; known: {', '.join(DIRECTIONS)}")
    for pair in config.train.pairs:
        if pair not in PAIRS:
            raise ConfigError(f"train.pairs: unknown pair '{pair}'{did_you_mean(pair, PAIRS)}; "
                              f"known: {', '.join(PAIRS)}")
    if config.train.steps < 0:
        raise ConfigError(f"train.steps: must be >= 0, got {config.train.steps}")
    if not config.model.min_temperature <= config.model.temperature:
        raise ConfigError("model.temperature: must be >= model.min_temperature")
    for key in ("batch_sizes", "text_lengths", "image_sizes", "audio_seconds"):
        values = getattr(config.profile, key)
        if not values or min(values) <= 0:
            raise ConfigError(f"profile.{key}: must be a non-empty list of positive numbers, got {values}")
    if config.eval.ks != sorted(set(config.eval.ks)) or min(config.eval.ks) < 1:
        raise ConfigError(f"eval.ks: must be increasing positive integers, got {config.eval.ks}")
    validate_names(config)
    return config


def validate_names(config: RunConfig) -> None:
    """Every technique name must be registered (unknown names get a did-you-mean)."""
    from xmbench import registry

    registry.load_builtins()
    registry.DATASETS.entry(config.data.name)
    registry.HEADS.entry(config.model.head)
    registry.LOSSES.entry(config.train.loss)
    registry.SCHEDULES.entry(config.train.schedule)
    if config.model.factory == "reference":
        for modality in MODALITIES:
            tower = getattr(config.model, modality)
            registry.TOWERS.entry(tower.arch)
            registry.ADAPTERS.entry(tower.adapter.method)
    elif ":" not in config.model.factory:
        raise ConfigError(f"model.factory: expected 'reference' or 'package.module:function', "
                          f"got '{config.model.factory}'")


def _pattern(key: str) -> str:
    """model.text.size → model.*.size, so per-modality keys share one rule."""
    parts = key.split(".")
    if len(parts) > 2 and parts[0] == "model" and parts[1] in MODALITIES:
        parts[1] = "*"
    return ".".join(parts)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} → {"a.b": 1}; keys that already hold dots stay as they are."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            flat.update(flatten(value, path))
        else:
            flat[path] = value
    return flat


def apply_overrides(tree: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of `tree` with dotted-key overrides set; '*' matches every table at a level."""
    result = json.loads(json.dumps(tree))
    for dotted, value in overrides.items():
        _set(result, dotted.split("."), value, dotted)
    return result


def _set(node: dict[str, Any], parts: list[str], value: Any, dotted: str) -> None:
    head, rest = parts[0], parts[1:]
    keys = [k for k, v in node.items() if isinstance(v, dict)] if head == "*" else [head]
    for key in keys:
        if key not in node:
            raise ConfigError(f"{dotted}: unknown key '{key}'{did_you_mean(key, node)}; known: {', '.join(node)}")
        if rest:
            if not isinstance(node[key], dict):
                raise ConfigError(f"{dotted}: '{key}' is a value, not a table")
            _set(node[key], rest, value, dotted)
        elif isinstance(node[key], dict):
            raise ConfigError(f"{dotted}: '{key}' is a table; set one of its keys: {', '.join(node[key])}")
        else:
            node[key] = value


def resolve(base: dict[str, Any], overrides: dict[str, Any] | None = None) -> RunConfig:
    """Defaults ← base table ← overrides, parsed and validated into a RunConfig."""
    tree = apply_overrides(RunConfig().to_dict(), flatten(base))
    tree = apply_overrides(tree, overrides or {})
    return validate(from_dict(RunConfig, tree))
