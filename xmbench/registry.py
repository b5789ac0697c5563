"""Name → technique registries: every technique a suite can name is registered here, with its options.

Each entry is a builder plus an options dataclass (peft's "the method owns its config"): a suite
names the technique and sets its options under it, `train.loss = { name = "supcon", temperature = 0.1 }`.
A registry refuses duplicates and answers an unknown name with the allowed ones and a
did-you-mean, so a typo in a suite fails at validation, not an hour into a run.

Technique modules are found by walking the packages of `BUILTIN_MODULES`: adding a technique
is adding one module. Those modules import no torch at import time (they import it inside their
builders), so parsing a suite, `xmbench validate` and pytest collection stay light.

Techniques from outside xmbench register with the same decorators (xmbench.plugins): modules a
suite names in `[suite] plugins`, and the entry points of the group `xmbench.plugins` of every
installed distribution, loaded once after the built-ins. Each entry remembers its origin, so
`xmbench list` and a duplicate's error say where a name came from.
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from xmbench.errors import ConfigError, DuplicateNameError, UnknownNameError, did_you_mean

BUILTIN = "built-in"  # the origin of xmbench's own entries; a plugin's is its module's name
ENTRY_POINT_GROUP = "xmbench.plugins"


@dataclass(frozen=True)
class NoOptions:
    """The technique takes no options."""


@dataclass(frozen=True)
class Entry:
    name: str
    builder: Callable[..., Any]
    options: type  # a dataclass; its defaults are the technique's defaults
    summary: str
    # learnable values the technique owns, {name: initial value} from its options (a loss's bias);
    # the training step holds them and the optimizer trains them as component "loss"
    parameters: Callable[[Any], dict[str, float]] | None = None
    origin: str = BUILTIN  # "built-in", or the module of the plugin that registered it

    def option_rows(self) -> list[tuple[str, str, Any, str]]:
        """(name, type, default, doc) of each option; docs from the options class's "Attributes:" lines."""
        import typing

        hints = typing.get_type_hints(self.options)
        defaults = self.options()
        docs = _attribute_docs(self.options.__doc__)
        return [(f.name, _type_name(hints[f.name]), getattr(defaults, f.name), docs.get(f.name, ""))
                for f in dataclasses.fields(self.options)]


def _attribute_docs(doc: str | None) -> dict[str, str]:
    """`name: text` lines of a Google-style "Attributes:" section."""
    lines = (doc or "").split("Attributes:", 1)[-1].splitlines() if "Attributes:" in (doc or "") else []
    found = {}
    for line in lines:
        name, sep, text = line.strip().partition(":")
        if sep and name.isidentifier():
            found[name] = text.strip()
    return found


def _type_name(hint: Any) -> str:
    import typing

    if typing.get_origin(hint) is typing.Annotated:
        return _type_name(typing.get_args(hint)[0])
    return getattr(hint, "__name__", None) if typing.get_origin(hint) is None else str(hint).replace("typing.", "")


@dataclass(frozen=True)
class Choice:
    """A registered technique chosen in a config, with its options (an instance of the entry's options class)."""

    name: str
    options: Any = NoOptions()


class Registry:
    """A named catalogue of builders of one kind (losses, adapters, heads, ...)."""

    def __init__(self, kind: str, config_key: str, selector: str = "name"):
        self.kind = kind  # one word: `xmbench list KIND`
        self.config_key = config_key  # where suites name an entry, e.g. "train.loss"
        self.selector = selector  # the key of a technique table that names it: name, or method for adapters
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, options: type = NoOptions, summary: str = "",
                 parameters: Callable[[Any], dict[str, float]] | None = None) -> Callable[[Callable], Callable]:
        """Decorator registering `builder` under `name`; the first docstring line is the summary.

        The builder is called with the stage's arguments and then `options=` the technique's options.
        `parameters(options) -> {name: initial value}` declares learnable scalars the technique owns.
        """
        if not dataclasses.is_dataclass(options):
            raise TypeError(f"{self.kind} '{name}': options must be a dataclass, got {options!r}")

        def add(builder: Callable) -> Callable:
            origin = origin_of(builder)
            if name in self._entries:
                first = self._entries[name]
                raise DuplicateNameError(f"{self.kind} '{name}' is registered twice: first by "
                                         f"{_described(first.origin, first.builder)}, again by "
                                         f"{_described(origin, builder)}; register it under another name")
            self._entries[name] = Entry(name, builder, options, summary or first_line(builder.__doc__), parameters,
                                        origin)
            return builder

        return add

    def forget(self, module: str) -> None:
        """Drop the entries registered by `module` or its submodules (a plugin whose import failed midway)."""
        for name in [n for n, e in self._entries.items() if _within(e.origin, module)]:
            del self._entries[name]

    def entry(self, name: str, where: str | None = None) -> Entry:
        load_builtins()
        if name not in self._entries:
            raise UnknownNameError(
                f"{where or self.config_key}: unknown {self.kind} '{name}'{did_you_mean(name, self._entries)}; "
                f"known: {', '.join(sorted(self._entries))}")
        return self._entries[name]

    def get(self, name: str) -> Callable[..., Any]:
        return self.entry(name).builder

    def bind(self, choice: Choice) -> Callable[..., Any]:
        """The chosen technique's builder with its options bound: call it with the stage's arguments."""
        return partial(self.entry(choice.name).builder, options=choice.options)

    def default(self, name: str, **options: Any) -> Choice:
        """A Choice of `name` with its default options (overridden by `options`)."""
        return Choice(name, self.entry(name).options(**options))

    def names(self) -> list[str]:
        load_builtins()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        load_builtins()
        return name in self._entries

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]


def first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n", 1)[0]


def origin_of(builder: Callable) -> str:
    """"built-in" for a builder defined inside the xmbench package, else the name of its module."""
    module = getattr(builder, "__module__", None) or "<unknown>"
    return BUILTIN if _within(module, "xmbench") else module


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _described(origin: str, builder: Callable) -> str:
    return f"built-in {getattr(builder, '__module__', 'xmbench')}" if origin == BUILTIN else f"plugin {origin}"


DATASETS = Registry("dataset", "data.name")
TOWERS = Registry("tower", "model.<modality>.arch")
ADAPTERS = Registry("adapter", "model.<modality>.adapter", selector="method")
HEADS = Registry("head", "model.head")
TEMPERATURES = Registry("temperature", "model.temperature")
FUSIONS = Registry("fusion", "model.fusion")
LOSSES = Registry("loss", "train.loss")
REGULARIZERS = Registry("regularizer", "train.regularizers")
SCHEDULES = Registry("schedule", "train.schedule")
SAMPLERS = Registry("sampler", "train.sampler")
PRECISIONS = Registry("precision", "train.precision")
CALLBACKS = Registry("callback", "train.callbacks")
AUGMENTATIONS = Registry("augmentation", "train.augment")
TRANSFORMS = Registry("transform", "transforms")
DERIVED = Registry("derived", "derived.<name>")

ALL_REGISTRIES = (DATASETS, TOWERS, ADAPTERS, HEADS, TEMPERATURES, FUSIONS, LOSSES, REGULARIZERS, SCHEDULES, SAMPLERS, PRECISIONS,
                  CALLBACKS, AUGMENTATIONS, TRANSFORMS, DERIVED)
BY_KIND = {r.kind: r for r in ALL_REGISTRIES}

# Modules and packages whose import registers the built-in techniques (a package: every
# module in it whose name does not start with "_").
BUILTIN_MODULES = (
    "xmbench.data.datasets", "xmbench.models.towers", "xmbench.models.adapters", "xmbench.models.heads",
    "xmbench.models.temperatures", "xmbench.models.fusion",
    "xmbench.train.losses", "xmbench.train.regularizers", "xmbench.train.schedules", "xmbench.train.samplers",
    "xmbench.train.precision", "xmbench.train.callbacks", "xmbench.data.augment", "xmbench.models.transforms",
    "xmbench.derived",
)
_loaded = False


def load_builtins() -> None:
    """Import the modules whose import registers the built-in techniques, then the installed plugins (once)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in BUILTIN_MODULES:
        module = importlib.import_module(name)
        for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
            if not info.name.startswith("_"):
                importlib.import_module(f"{name}.{info.name}")
    for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        load_entry_point(point)


def load_entry_point(point: importlib.metadata.EntryPoint) -> None:
    """Load one installed plugin (`[project.entry-points."xmbench.plugins"] name = "pkg.module"`).

    After the built-ins, so that a plugin reusing a built-in's name is the one refused; a plugin
    that fails to load names its distribution, so the user knows what to fix or uninstall.
    """
    dist = getattr(point.dist, "name", None) or "an installed distribution"
    try:
        point.load()
    except Exception as exc:  # noqa: BLE001 — whatever its import raises, the plugin is at fault
        for registry in ALL_REGISTRIES:
            registry.forget(point.value.partition(":")[0])
        raise ConfigError(f"entry point '{point.name} = {point.value}' of {dist} (group {ENTRY_POINT_GROUP}): "
                          f"cannot load it: {type(exc).__name__}: {exc}") from None
