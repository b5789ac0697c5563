"""Techniques from outside xmbench: plugin modules whose import registers into its registries.

A plugin registers with the built-ins' own decorators (`LOSSES.register("mine", MyOptions)` from
xmbench.registry), so a suite names its techniques as it names built-in ones. Two ways in:

- a suite names modules, `[suite] plugins = ["mypkg.techniques"]`: imported before its config
  tables are parsed; a module in the working folder imports like one in a package;
- an installed distribution declares entry points in the group `xmbench.plugins`: loaded once,
  after the built-ins (xmbench.registry.load_builtins).

A config that names plugins carries their module names (`RunConfig.plugins`), so every process
that rebuilds it (an isolated run, a torchrun rank, a Ray worker, a derived run reloading its
inputs) imports them before resolving names; its id hashes their source, so editing a plugin
makes its variants incomparable rather than silently compared. A config without plugins keeps
the id it always had.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path

from xmbench.errors import ConfigError, DuplicateNameError
from xmbench.registry import ALL_REGISTRIES, load_builtins


def import_plugins(modules: Iterable[str], where: str = "plugins") -> None:
    """Import each plugin module (a no-op for one imported already); any failure is a ConfigError
    at `where` naming the module.

    The built-ins load first, so a plugin reusing a built-in's name is the one refused. A module
    whose import fails has what it registered so far dropped, so a fixed module imports cleanly
    in the same process (pytest, a notebook).
    """
    load_builtins()
    if "" not in sys.path:  # a plugin in the working folder imports like one in a package
        sys.path.insert(0, "")
    for name in modules:
        try:
            importlib.import_module(name)
        except DuplicateNameError as exc:
            _forget(name)
            raise ConfigError(f"{where}: plugin module '{name}': {exc}") from None
        except Exception as exc:  # noqa: BLE001 — whatever its import raises, the plugin is at fault
            _forget(name)
            raise ConfigError(f"{where}: cannot import plugin module '{name}': {type(exc).__name__}: {exc}") from None


def check_names(value: object, where: str) -> list[str]:
    """`value` as a list of module names, or a ConfigError at `where`."""
    if not (isinstance(value, list) and all(isinstance(m, str) and m.strip() for m in value)):
        raise ConfigError(f"{where}: expected a list of module names (\"mypkg.techniques\"), got {value!r}")
    return list(value)


def plugin_sources(modules: Iterable[str]) -> dict[str, str | None]:
    """A hash of each plugin's source (every .py file of a package), None where it cannot be found."""
    return {name: _source_digest(name) for name in modules}


def _source_digest(module: str) -> str | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        return None
    origin = Path(spec.origin)
    files = sorted(origin.parent.rglob("*.py")) if spec.submodule_search_locations else [origin]
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(origin.parent)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _forget(module: str) -> None:
    for registry in ALL_REGISTRIES:
        registry.forget(module)
