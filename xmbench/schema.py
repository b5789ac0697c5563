"""Typed configs from plain trees (TOML tables): load, layer, and a digest that survives growth.

A config is a tree of dataclasses, "sections". A field's type hint says what it accepts: bool,
int, float, str; `list[T]`; `dict[str, T]`; `T | None`; `Literal[...]`; a nested section;
`Annotated[T, Range(...)]` for bounds and `Annotated[str, Named(kind)]` for a registry name;
and a `Choice` field (declared with `technique(kind, default)`): a registered technique with
its own options dataclass, written as its name or as a table `{ name = "supcon", temperature = 0.1 }`.

Every error names the dotted key path; unknown keys and values get a did-you-mean. The checks
are written here rather than with pydantic: the messages (key path, did-you-mean, the known
values) are the product, the dataclasses stay plain, and parsing a suite imports nothing heavy.

`changes(config, defaults)` is what differs from the defaults: config ids, the foundation cache
key and the data cache key hash it, so a new option with a default leaves them all valid.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union

from xmbench.errors import ConfigError, did_you_mean
from xmbench.registry import BY_KIND, Choice


@dataclass(frozen=True)
class Range:
    """Bounds of a number; `open` bounds exclude the limit."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def check(self, value: float, path: str) -> None:
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if too_low or too_high:
            raise ConfigError(f"{path}: must be {self.describe()}, got {value!r}")

    def describe(self) -> str:
        if self.low == 0 and self.high is None:
            return "positive" if self.low_open else ">= 0"
        low = "" if self.low is None else f"{'(' if self.low_open else '['}{self.low:g}"
        high = "" if self.high is None else f"{self.high:g}{')' if self.high_open else ']'}"
        return f"in {low or '(-inf'}, {high or 'inf)'}"


POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
PROBABILITY = Range(0, 1, high_open=True)  # dropout-like: 1 would drop everything


@dataclass(frozen=True)
class Named:
    """A string that must name an entry of the registry of this kind."""

    kind: str


def technique(kind: str, default: str | None = None, **options: Any):
    """A Choice field of registry `kind` defaulting to `default` (or, without one, a list of choices)."""
    if default is None:
        return field(default_factory=list, metadata={"kind": kind})
    return field(default_factory=lambda: BY_KIND[kind].default(default, **options), metadata={"kind": kind})


# --- loading ------------------------------------------------------------------------------

def load(cls: type, values: Any, path: str = "") -> Any:
    """Build section `cls` from a plain tree, checking every key and value."""
    if not isinstance(values, dict):
        raise ConfigError(f"{path or 'config'}: expected a table, got {type(values).__name__} {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls, include_extras=True)
    kwargs = {}
    for key, value in values.items():
        where = _join(path, key)
        if key not in fields:
            raise ConfigError(f"{where}: unknown key '{key}'{did_you_mean(key, fields)}; known: {', '.join(fields)}")
        kwargs[key] = convert(hints[key], value, where, fields[key].metadata.get("kind"))
    try:
        return cls(**kwargs)
    except ConfigError as exc:  # a section's own cross-field check (__post_init__)
        raise ConfigError(f"{path}: {exc}" if path else str(exc)) from None


def convert(hint: Any, value: Any, path: str, kind: str | None = None) -> Any:
    """`value` as type `hint`, or a ConfigError naming `path`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        result = convert(args[0], value, path, kind)
        for meta in hint.__metadata__:
            if isinstance(meta, Range):
                meta.check(result, path)
            elif isinstance(meta, Named):
                BY_KIND[meta.kind].entry(result, path)
        return result
    if hint is Choice:
        return load_choice(kind, value, path)
    if dataclasses.is_dataclass(hint):
        return load(hint, value, path)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {type(value).__name__} {value!r}")
        return [convert(args[0], v, f"{path}[{i}]", kind) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a table, got {type(value).__name__} {value!r}")
        return {str(k): convert(args[1], v, _join(path, str(k)), kind) for k, v in value.items()}
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: {value!r} is not one of {', '.join(map(str, args))}"
                              f"{did_you_mean(value, [str(a) for a in args])}")
        return value
    if origin in (Union, types.UnionType):
        return _convert_union(args, value, path, kind)
    return _convert_scalar(hint, value, path)


def _convert_union(options: tuple, value: Any, path: str, kind: str | None) -> Any:
    if value is None:
        if type(None) in options:
            return None
        raise ConfigError(f"{path}: a value is required")
    errors = []
    for option in (o for o in options if o is not type(None)):
        try:
            return convert(option, value, path, kind)
        except ConfigError as exc:
            errors.append(str(exc).removeprefix(f"{path}: "))
    raise ConfigError(f"{path}: {'; or '.join(errors)}")


def _convert_scalar(hint: Any, value: Any, path: str) -> Any:
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (hint is int and isinstance(value, bool)) or not isinstance(value, hint):
        raise ConfigError(f"{path}: expected {hint.__name__}, got {type(value).__name__} {value!r}")
    return value


def load_choice(kind: str, value: Any, path: str) -> Choice:
    """A technique named as a string, or a table of its name (the registry's selector key) and options."""
    registry = BY_KIND[kind]
    if isinstance(value, Choice):
        return value
    if isinstance(value, str):
        value = {registry.selector: value}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: expected a {kind} name or a table with '{registry.selector}', got {value!r}")
    options = dict(value)
    name = options.pop(registry.selector, None)
    if not isinstance(name, str):
        raise ConfigError(f"{path}: a {kind} table needs '{registry.selector}' = one of {', '.join(registry.names())}")
    entry = registry.entry(name, path)
    if options and not dataclasses.fields(entry.options):
        key = next(iter(options))
        raise ConfigError(f"{_join(path, key)}: unknown key '{key}'; {name} takes no options")
    return Choice(name, load(entry.options, options, path))


# --- trees: what configs look like as plain data ------------------------------------------

def to_tree(value: Any, kind: str | None = None) -> Any:
    """A config as plain data: sections as tables, a Choice as {selector: name, **options}."""
    if isinstance(value, Choice):
        return {BY_KIND[kind].selector: value.name, **to_tree(value.options)}
    if dataclasses.is_dataclass(value):
        return {f.name: to_tree(getattr(value, f.name), f.metadata.get("kind")) for f in dataclasses.fields(value)}
    if isinstance(value, list):
        return [to_tree(v, kind) for v in value]
    if isinstance(value, dict):
        return {k: to_tree(v, kind) for k, v in value.items()}
    return value


def changes(value: Any, default: Any, kind: str | None = None) -> Any:
    """What `value` sets differently from `default`, as a tree; {} when nothing differs.

    A Choice of another technique than the default shows its name and what differs from
    that technique's own defaults. This is the identity of a config that survives growth.
    """
    if isinstance(value, Choice) and isinstance(default, Choice):
        if value.name != default.name:
            return {BY_KIND[kind].selector: value.name, **_revision(value.options),
                    **changes(value.options, type(value.options)())}
        return changes(value.options, default.options)
    if isinstance(value, Choice):  # an optional technique set where the default has none (model.fusion)
        return {BY_KIND[kind].selector: value.name, **_revision(value.options),
                **changes(value.options, type(value.options)())}
    if dataclasses.is_dataclass(value):
        if type(default) is not type(value):
            default = type(value)()  # a section compares with its own class's defaults
        return {f.name: changes(getattr(value, f.name), getattr(default, f.name), f.metadata.get("kind"))
                for f in dataclasses.fields(value) if getattr(value, f.name) != getattr(default, f.name)}
    return {} if value == default else to_tree(value, kind)


def _revision(options) -> dict:
    """A technique whose defaults changed meaning declares `REVISION` (a ClassVar of its options): it joins the
    identity of every config that names the technique, so only those configs get new ids (CONFIG_SCHEMA would
    change every id)."""
    revision = getattr(type(options), "REVISION", 0)
    return {"revision": revision} if revision else {}


# --- layering: defaults ← base ← overrides --------------------------------------------------

def merge(tree: dict, cls: type, layer: dict, path: str = "") -> None:
    """Apply `layer` (nested tables, dotted keys allowed) onto the plain `tree` of section `cls`, in place.

    A key `*` applies its table to every sub-section (`model.*.adapter.rank`). A Choice field
    takes a name or a table: naming another technique starts from that technique's defaults,
    otherwise the table's keys update the current options. Values are checked later, by `load`.
    """
    if not isinstance(layer, dict):
        raise ConfigError(f"{path}: expected a table, got {layer!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key, value in layer.items():
        if "." in key:  # a dotted key inside a table: "model.*.adapter.rank" = 4
            head, _, rest = key.partition(".")
            merge(tree, cls, {head: {rest: value}}, path)
            continue
        if key == "*":
            sections = [name for name in fields if _is_section(hints[name])]
            if not sections:
                raise ConfigError(f"{_join(path, '*')}: '{path}' has no tables to match")
            for name in sections:
                merge(tree, cls, {name: value}, path)
            continue
        where = _join(path, key)
        if key not in fields:
            raise ConfigError(f"{where}: unknown key '{key}'{did_you_mean(key, fields)}; known: {', '.join(fields)}")
        hint = hints[key]
        if _is_section(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: '{key}' is a table; set one of its keys: "
                                  f"{', '.join(f.name for f in dataclasses.fields(hint))}")
            merge(tree[key], hint, value, where)
        elif hint is Choice:
            tree[key] = _merge_choice(tree[key], fields[key].metadata["kind"], value)
        else:
            tree[key] = value


def _merge_choice(current: dict, kind: str, value: Any) -> Any:
    selector = BY_KIND[kind].selector
    if isinstance(value, str):
        value = {selector: value}
    if not isinstance(value, dict):
        return value  # load() names the type error
    name = value.get(selector, current.get(selector))
    start = current if name == current.get(selector) else {selector: name}
    return {**start, **value}


def unflatten(dotted: str, value: Any) -> dict:
    """"a.b.c" = v → {"a": {"b": {"c": v}}}."""
    for part in reversed(dotted.split(".")):
        value = {part: value}
    return value


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} → {"a.b": 1}; keys that already hold dots stay as they are."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            flat.update(flatten(value, path))
        else:
            flat[path] = value
    return flat


def _is_section(hint: Any) -> bool:
    return dataclasses.is_dataclass(hint) and hint is not Choice


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
