"""Name → builder registries: every technique a suite can name is registered here.

A registry refuses duplicates and answers an unknown name with the allowed ones and a
did-you-mean, so a typo in a suite fails at validation, not an hour into a run.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xmbench.errors import UnknownNameError, did_you_mean


@dataclass(frozen=True)
class Entry:
    name: str
    builder: Callable[..., Any]
    summary: str


class Registry:
    """A named catalogue of builders of one kind (losses, adapters, heads, ...)."""

    def __init__(self, kind: str, config_key: str):
        self.kind = kind
        self.config_key = config_key  # where suites name an entry, e.g. "train.loss"
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, summary: str = "") -> Callable[[Callable], Callable]:
        """Decorator registering `builder` under `name`; the first docstring line is the summary."""

        def add(builder: Callable) -> Callable:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = Entry(name, builder, summary or _first_line(builder.__doc__))
            return builder

        return add

    def get(self, name: str) -> Callable[..., Any]:
        return self.entry(name).builder

    def entry(self, name: str) -> Entry:
        if name not in self._entries:
            raise UnknownNameError(
                f"unknown {self.kind} '{name}' at {self.config_key}{did_you_mean(name, self._entries)}; "
                f"known: {', '.join(sorted(self._entries))}"
            )
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n", 1)[0]


DATASETS = Registry("dataset", "data.name")
TOWERS = Registry("tower", "model.<modality>.arch")
ADAPTERS = Registry("adapter", "model.<modality>.adapter.method")
HEADS = Registry("projection head", "model.head")
LOSSES = Registry("loss", "train.loss")
SCHEDULES = Registry("lr schedule", "train.schedule")

ALL_REGISTRIES = (DATASETS, TOWERS, ADAPTERS, HEADS, LOSSES, SCHEDULES)


def load_builtins() -> None:
    """Import the modules whose import registers the built-in techniques."""
    import xmbench.data.sources  # noqa: F401
    import xmbench.models.heads  # noqa: F401
    import xmbench.models.peft  # noqa: F401
    import xmbench.models.towers  # noqa: F401
    import xmbench.train.losses  # noqa: F401
    import xmbench.train.schedules  # noqa: F401
