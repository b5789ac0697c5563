"""Modules imported on first use, so that technique modules can be imported without torch.

Registering a technique must not import torch: parsing a suite, `xmbench validate`, `xmbench
list` and pytest collection import every technique module and need only their names and
options. A technique module therefore writes `from xmbench.lazy import torch, F` and uses them
as usual inside its functions; the real module is imported at the first attribute access.
(Classes that subclass torch types live in modules imported by the builders, e.g. models/blocks.py.)
"""
from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """Stands in for module `name` until an attribute is first read."""

    def __init__(self, name: str):
        self._name = name
        self._module = None

    def __getattr__(self, attribute: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


torch = LazyModule("torch")
F = LazyModule("torch.nn.functional")
nn = LazyModule("torch.nn")
