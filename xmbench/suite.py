"""Suites: a TOML file of a base config, named variants and matrix axes, expanded to Variants.

    [suite]            name, description, seeds, timeout_s, reference, include, plugins
    [base]             config tables (data, model, train, foundation, eval, profile, transforms)
    [profile]          the profiling switches of every variant (same as [base.profile])
    [variants.NAME]    dotted-key overrides of the base ("model.*.adapter.rank" = 4)
    [matrix]           cartesian axes, "train.lr" = [1e-3, 3e-3], crossed with every variant
    [derived.NAME]     a derived run over other variants' trained models:
                       name = "ensemble", inputs = ["lora_r4", "lora_r8"], and the technique's options
    [gates]            regression rules (xmbench.bench.gate)
    [tune]             each variant's own best settings, searched on validation (xmbench.tuning)
"""
from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from xmbench.bench.gate import parse_gates
from xmbench.config import RunConfig, resolve
from xmbench.errors import ConfigError, did_you_mean
from xmbench.plugins import check_names, import_plugins
from xmbench.registry import Choice
from xmbench.schema import flatten, load_choice, to_tree
from xmbench.tuning import TunedVariant, parse_tune

SUITE_KEYS = ("name", "description", "seeds", "timeout_s", "reference", "include", "plugins")
DEFAULT_TIMEOUT_S = 3600.0
TOP_LEVEL = ("suite", "base", "profile", "variants", "matrix", "derived", "gates", "tune")


@dataclass(frozen=True)
class Variant:
    """One resolved configuration of a suite; its id changes whenever its config does (or its teacher's)."""

    name: str
    config: RunConfig
    overrides: dict[str, Any]
    teacher_id: str = ""  # the id of the variant that teaches this one (train.teacher): it shapes the results too

    @property
    def variant_id(self) -> str:
        if not self.teacher_id:
            return self.config.config_id()
        return hashlib.sha256(f"{self.config.config_id()}:{self.teacher_id}".encode()).hexdigest()[:12]

    @property
    def depends_on(self) -> tuple[str, ...]:
        return (self.config.train.teacher,) if self.config.train.teacher else ()

    def record_config(self) -> dict[str, Any]:
        return self.config.to_dict()


@dataclass(frozen=True)
class DerivedVariant:
    """A run built from other variants' trained models (same seed): an ensemble, a soup, a fusion.

    Its data, evaluation and profile settings are its first input's; its id hashes the technique
    and the inputs' ids, so it becomes incomparable whenever an input's config changes.
    """

    name: str
    technique: Choice
    inputs: tuple[str, ...]
    input_ids: tuple[str, ...]
    config: RunConfig  # the first input's: what the derived model is evaluated and profiled with
    overrides: dict[str, Any]

    @property
    def variant_id(self) -> str:
        identity = {"derived": to_tree(self.technique, "derived"), "inputs": list(self.input_ids)}
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def depends_on(self) -> tuple[str, ...]:
        return self.inputs

    def record_config(self) -> dict[str, Any]:
        return {"derived": to_tree(self.technique, "derived"), "inputs": dict(zip(self.inputs, self.input_ids)),
                "evaluated_as": self.config.to_dict()}


@dataclass
class Suite:
    name: str
    path: Path | None
    description: str
    seeds: list[int]
    variants: list[Variant]
    gates: list = field(default_factory=list)  # GateRule, the defaults when the suite declares none
    timeout_s: float = DEFAULT_TIMEOUT_S  # per variant × seed
    derived: list[DerivedVariant] = field(default_factory=list)
    reference: str | None = None  # the variant every technique of the suite is reported against
    tuning: list[TunedVariant] = field(default_factory=list)  # [tune]: the variants searched before they run
    references: dict[str, str] = field(default_factory=dict)  # a variant's own reference, where not `reference`

    def reference_for(self, name: str) -> str | None:
        """The variant `name` is reported against: a tuned run against the tuned reference."""
        return self.references.get(name, self.reference)

    def runs(self) -> list[tuple[Variant | DerivedVariant, int]]:
        """Every (variant, seed) pair, in the order they run: trained variants, then derived runs."""
        return [(v, s) for v in self.variants + self.derived for s in self.seeds]

    def variant(self, name: str) -> Variant | DerivedVariant:
        """The variant of that name; a tuned run's name ([tune]'s `NAME@tuned`) gives the variant it tunes."""
        everything = self.variants + self.derived
        names = [v.name for v in everything]
        tuned = {t.tuned_name: t.name for t in self.tuning if t.tuned_name not in names}
        if name in tuned:
            return self.variant(tuned[name])
        if name not in names:
            raise ConfigError(f"suite '{self.name}' has no variant '{name}'{did_you_mean(name, names)}")
        return everything[names.index(name)]


def load_suite(path: str | Path) -> Suite:
    """Read, expand and validate a suite file; every error names the file and the key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such suite file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None
    try:
        return parse_suite(raw, default_name=path.stem, path=path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def parse_suite(raw: dict[str, Any], default_name: str = "suite", path: Path | None = None) -> Suite:
    for key in raw:
        if key not in TOP_LEVEL:
            raise ConfigError(f"unknown table '{key}'{did_you_mean(key, TOP_LEVEL)}; known: {', '.join(TOP_LEVEL)}")
    header = raw.get("suite", {})
    for key in header:
        if key not in SUITE_KEYS:
            raise ConfigError(f"suite.{key}: unknown key{did_you_mean(key, SUITE_KEYS)}")
    seeds = header.get("seeds", [0])
    if not (isinstance(seeds, list) and seeds and all(type(s) is int for s in seeds)):
        raise ConfigError(f"suite.seeds: expected a non-empty list of integers, got {seeds!r}")
    timeout_s = header.get("timeout_s", DEFAULT_TIMEOUT_S)
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or timeout_s <= 0:
        raise ConfigError(f"suite.timeout_s: expected a positive number of seconds, got {timeout_s!r}")
    raw = with_included(raw, path)
    base = with_plugins(dict(raw.get("base", {})), raw.get("suite", {}).get("plugins", []))
    if "profile" in raw:
        if "profile" in base:
            raise ConfigError("profile: set it as [profile] or as [base.profile], not both")
        base["profile"] = raw["profile"]
    tables = raw.get("variants", {"base": {}})
    variants = expand(base, tables, raw.get("matrix", {}))
    reference = _reference(header.get("reference"), variants)
    tuning = []
    if "tune" in raw:
        if raw.get("matrix"):
            raise ConfigError("tune: a suite with [matrix] cannot also [tune]; put the axes in one of them")
        tuning = parse_tune(raw["tune"], base, tables, variants, reference, seeds,
                            lambda name, config, overrides: Variant(name, config, overrides))
    return Suite(
        name=str(header.get("name", default_name)),
        path=path,
        description=str(header.get("description", "")),
        seeds=seeds,
        variants=variants,
        gates=parse_gates(raw.get("gates", {})),
        timeout_s=float(timeout_s),
        derived=parse_derived(raw.get("derived", {}), variants),
        reference=reference,
        tuning=tuning,
    )


def with_included(raw: dict[str, Any], path: Path | None) -> dict[str, Any]:
    """`suite.include`: other suite files (relative to this one) whose variants and derived runs join
    this suite's, on this suite's base, seeds and profile (theirs are not read; their plugins join
    this suite's). A name defined twice must be defined alike (every day's suite has the same
    reference); one level of inclusion."""
    includes = raw.get("suite", {}).get("include", [])
    if not (isinstance(includes, list) and all(isinstance(i, str) for i in includes)):
        raise ConfigError(f"suite.include: expected a list of suite file names, got {includes!r}")
    folder = path.parent if path else Path.cwd()
    merged = {kind: dict(raw.get(kind, {})) for kind in ("variants", "derived")}
    origin = {(kind, name): "this file" for kind, tables in merged.items() for name in tables}
    plugins = check_names(raw.get("suite", {}).get("plugins", []), "suite.plugins")
    for name in includes:
        other = _read_included(folder / name)
        if other.get("suite", {}).get("include"):
            raise ConfigError(f"suite.include: {name} includes other suites itself; include those here instead")
        for kind in merged:
            for variant, table in other.get(kind, {}).items():
                if (kind, variant) in origin and merged[kind][variant] != table:
                    raise ConfigError(f"suite.include: {kind}.{variant} is defined differently in {origin[kind, variant]} "
                                      f"and in {name}; rename one of them")
                merged[kind].setdefault(variant, table)
                origin.setdefault((kind, variant), name)
        plugins += [m for m in check_names(other.get("suite", {}).get("plugins", []), f"suite.include: {name}: suite.plugins")
                    if m not in plugins]  # its variants may name their techniques
    header = {**raw.get("suite", {}), **({"plugins": plugins} if plugins else {})}
    return {**raw, "suite": header, **{kind: tables for kind, tables in merged.items() if tables}}


def with_plugins(base: dict[str, Any], plugins: Any) -> dict[str, Any]:
    """`suite.plugins`: import the modules (before any config table is parsed, so their technique
    names resolve) and put them in the base config, which every process rebuilding a variant reads."""
    if "plugins" in base:
        raise ConfigError("base.plugins: name plugin modules in [suite] plugins")
    plugins = check_names(plugins, "suite.plugins")
    import_plugins(plugins, "suite.plugins")
    return {**base, "plugins": plugins} if plugins else base


def _read_included(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"suite.include: no such suite file {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"suite.include: {path}: malformed TOML: {exc}") from None


def _reference(name, variants: list[Variant]) -> str | None:
    """`suite.reference`: the variant the report compares every other one with (it must exist)."""
    if name is None:
        return None
    names = [v.name for v in variants]
    if name not in names:
        raise ConfigError(f"suite.reference: no variant '{name}'{did_you_mean(str(name), names)}; known: {', '.join(names)}")
    return name


def parse_derived(tables: dict[str, Any], variants: list[Variant]) -> list[DerivedVariant]:
    """`[derived.NAME]` tables: `name` of the technique, `inputs` (variants of this suite), its options."""
    by_name = {v.name: v for v in variants}
    derived = []
    for name, table in tables.items():
        where = f"derived.{name}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: expected a table with name and inputs, got {table!r}")
        if name in by_name:
            raise ConfigError(f"{where}: a variant of that name exists already")
        options = dict(table)
        inputs = options.pop("inputs", None)
        if not (isinstance(inputs, list) and inputs and all(isinstance(i, str) for i in inputs)):
            raise ConfigError(f"{where}.inputs: expected a non-empty list of variant names, got {inputs!r}")
        for i in inputs:
            if i not in by_name:
                raise ConfigError(f"{where}.inputs: no variant '{i}'{did_you_mean(i, by_name)}; "
                                  f"known: {', '.join(by_name)}")
        technique = load_choice("derived", options, where)
        derived.append(DerivedVariant(name, technique, tuple(inputs), tuple(by_name[i].variant_id for i in inputs),
                                      by_name[inputs[0]].config, table))
    return derived


def expand(base: dict[str, Any], variants: dict[str, Any], matrix: dict[str, Any]) -> list[Variant]:
    """Each named variant crossed with every point of the matrix, resolved and validated."""
    for axis, values in matrix.items():
        if axis == "plugins":
            raise ConfigError("matrix.plugins: name plugin modules in [suite] plugins")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"matrix.{axis}: expected a non-empty list of values, got {values!r}")
    try:
        resolve(base)
    except ConfigError as exc:
        raise ConfigError(f"base.{exc}") from None
    axes = list(matrix)
    points = list(itertools.product(*(matrix[a] for a in axes))) if axes else [()]
    expanded = []
    for name, table in variants.items():
        if not isinstance(table, dict):
            raise ConfigError(f"variants.{name}: expected a table of overrides, got {table!r}")
        if "plugins" in table:  # one set for the whole suite (suite.plugins)
            raise ConfigError(f"variants.{name}.plugins: name plugin modules in [suite] plugins")
        for point in points:
            overrides = {**flatten(table), **dict(zip(axes, point))}
            label = name + "".join(f"[{a}={v}]" for a, v in zip(axes, point))
            try:
                config = resolve(base, table, dict(zip(axes, point)))
            except ConfigError as exc:
                raise ConfigError(f"variant '{label}': {exc}") from None
            expanded.append(Variant(label, config, overrides))
    return with_teachers(expanded)


def with_teachers(variants: list[Variant]) -> list[Variant]:
    """Check each `train.teacher` names another variant, without cycles; fold the teacher's id into the student's."""
    by_name = {v.name: v for v in variants}
    for variant in variants:
        seen, name = [variant.name], variant.config.train.teacher
        while name:
            if name not in by_name:
                raise ConfigError(f"variant '{variant.name}': train.teacher: no variant '{name}'"
                                  f"{did_you_mean(name, by_name)}; known: {', '.join(by_name)}")
            if name in seen:
                raise ConfigError(f"variant '{variant.name}': train.teacher: {' → '.join(seen + [name])} is a cycle")
            seen.append(name)
            name = by_name[name].config.train.teacher
    resolved: dict[str, Variant] = {}

    def resolve_one(variant: Variant) -> Variant:
        if variant.name not in resolved:
            teacher = variant.config.train.teacher
            resolved[variant.name] = replace(variant, teacher_id=resolve_one(by_name[teacher]).variant_id) \
                if teacher else variant
        return resolved[variant.name]

    return [resolve_one(v) for v in variants]
