"""Errors xmbench raises for bad input: each names the file, key or row at fault."""
from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


class XmbenchError(Exception):
    """Base class: an error the user can fix, printed without a traceback by the CLI."""


class ConfigError(XmbenchError):
    """A suite or config value is malformed, unknown or of the wrong type."""


class DataError(XmbenchError):
    """A data file or manifest row is missing, corrupt or empty."""


class UnknownNameError(ConfigError):
    """A registry lookup failed."""


class DuplicateNameError(ConfigError, ValueError):
    """A technique name registered twice (a plugin reusing a built-in's or another plugin's name).

    A ValueError too: registering is a programming act, and callers of `Registry.register` have
    caught ValueError since before plugins.
    """


class NonFiniteLossError(XmbenchError):
    """Training produced a NaN or infinite loss."""


class ModelOutputError(XmbenchError):
    """A model's `encode` returned the wrong shape, dtype or non-finite values."""


@dataclass(frozen=True)
class Problem:
    """One finding of a check: where (a file and line, or a config key), what is wrong, and the fix."""

    where: str
    what: str
    fix: str = ""

    def __str__(self) -> str:
        return f"{self.where}: {self.what}" + (f" — {self.fix}" if self.fix else "")

    @classmethod
    def from_error(cls, error: Exception) -> Problem:
        where, _, what = str(error).partition(": ")
        return cls(where, what) if what else cls("", where)


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' for the closest choice, or '' when none is close."""
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
