"""A suite's `[tune]` table: each technique searched at its own settings, chosen on validation data.

    [tune]
    "train.lr" = [1e-3, 3e-3, 1e-2, 3e-2]   # the axes: any config key, a list of values each
    variants = ["ia3", "vera"]              # default: every trained variant but the reference
    split = "val"                            # where a point is scored; "test" is refused (leakage)
    metric = "rsum"                          # the selection metric: rsum or DIRECTION.METRIC (t2i.R@1)
    seeds = [0]                              # the seeds a point is scored over; default the suite's first
    search = { "train.steps" = 50 }          # overrides of the search runs only (a shorter budget)
    untuned = true                           # also keep each variant at the suite's settings (both verdicts)

`[[tune]]` (an array of such tables) gives groups of variants their own grids; a variant is tuned by
one group only. When the reference is tuned it is tuned the same way, and the tuned variants are
compared with the tuned reference.

Parsing makes every run the search needs (a Variant per point, evaluated on the selection split,
with the profile's costly probes off) and every run it may choose (the variant at that point, as
the suite evaluates it), so that `xmbench validate` checks them all before anything runs. The
search itself, the choice and the records are xmbench.bench.tune's.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from xmbench.config import DIRECTIONS, resolve
from xmbench.errors import ConfigError, did_you_mean
from xmbench.schema import flatten

TUNE_KEYS = ("variants", "split", "metric", "seeds", "search", "untuned")
TUNED_SUFFIX = "@tuned"  # the tuned run's name when the untuned one is kept beside it
SEARCH_SUFFIX = "-search"  # the search runs' records live under the suite name + this (never in its reports)
# What a search run leaves out: it is scored on one number, so the probes that only cost time are off.
SEARCH_PROFILE = {"profile.latency": False, "profile.flops": False, "profile.alignment": False,
                  "profile.memory": False, "profile.trace": False, "profile.grad_norms": False,
                  "profile.shape_scaling": False, "profile.telemetry": False, "profile.memory_snapshot": False}


@dataclass(frozen=True)
class TunedVariant:
    """One variant's search: its grid, the runs that score each point, the runs each point would be."""

    name: str  # the variant as the suite names it
    axes: tuple[str, ...]
    points: tuple[tuple, ...]  # one value per axis, in grid order
    search: tuple  # xmbench.suite.Variant per point, evaluated on `split`
    finals: tuple  # xmbench.suite.Variant per point, evaluated as the suite evaluates (its test split)
    split: str
    metric: str
    seeds: tuple[int, ...]
    untuned: bool  # keep the variant at the suite's settings beside the tuned one

    @property
    def tuned_name(self) -> str:
        return self.name + TUNED_SUFFIX if self.untuned else self.name


def parse_tune(raw: Any, base: dict[str, Any], tables: dict[str, Any], variants: list, reference: str | None,
               seeds: list[int], make_variant) -> list[TunedVariant]:
    """`[tune]` or `[[tune]]` → one TunedVariant per tuned variant; every error names the key.

    `tables` are the suite's variant tables (name → overrides), `variants` the expanded Variants,
    `make_variant(name, config, overrides)` builds a Variant as the suite does.
    """
    groups = raw if isinstance(raw, list) else [raw]
    if not groups or not all(isinstance(g, dict) for g in groups):
        raise ConfigError(f"tune: expected a table ([tune]) or an array of tables ([[tune]]), got {raw!r}")
    tuned: list[TunedVariant] = []
    for index, group in enumerate(groups):
        where = "tune" if isinstance(raw, dict) else f"tune[{index}]"
        tuned += _parse_group(group, where, base, tables, variants, reference, seeds, make_variant)
    names = [t.name for t in tuned]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"tune: {', '.join(twice)} tuned by more than one [[tune]] group; give each variant one grid")
    return tuned


def _parse_group(group: dict, where: str, base: dict, tables: dict, variants: list, reference: str | None,
                 suite_seeds: list[int], make_variant) -> list[TunedVariant]:
    options = {k: v for k, v in group.items() if k in TUNE_KEYS}
    axes = {k: v for k, v in flatten({k: v for k, v in group.items() if k not in TUNE_KEYS}).items()}
    if not axes:
        raise ConfigError(f"{where}: no axis to search; name one, e.g. \"train.lr\" = [1e-3, 3e-3, 1e-2, 3e-2] "
                          f"(other keys: {', '.join(TUNE_KEYS)})")
    for axis, values in axes.items():
        if "." not in axis:
            raise ConfigError(f"{where}.{axis}: unknown key{did_you_mean(axis, TUNE_KEYS)}; an axis is a dotted "
                              f"config key such as \"train.lr\"")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}.{axis}: expected a non-empty list of values, got {values!r}")
    split = options.get("split", "val")
    if split == "test":
        raise ConfigError(f"{where}.split: 'test' is the split every verdict is computed on: choosing settings on "
                          f"it is leakage (the test split would judge its own selection); select on 'val'")
    if split not in ("val", "train"):
        raise ConfigError(f"{where}.split: expected 'val' (or 'train'), got {split!r}")
    metric = options.get("metric", "rsum")
    seeds = options.get("seeds", suite_seeds[:1])
    if not (isinstance(seeds, list) and seeds and all(type(s) is int for s in seeds)):
        raise ConfigError(f"{where}.seeds: expected a non-empty list of integers, got {seeds!r}")
    search = options.get("search", {})
    if not isinstance(search, dict):
        raise ConfigError(f"{where}.search: expected a table of overrides for the search runs, got {search!r}")
    untuned = options.get("untuned", False)
    if not isinstance(untuned, bool):
        raise ConfigError(f"{where}.untuned: expected true or false, got {untuned!r}")
    names = _tuned_names(options.get("variants"), where, variants, reference)
    by_name = {v.name: v for v in variants}
    points = list(itertools.product(*axes.values()))
    tuned = []
    for name in names:
        if by_name[name].config.train.teacher:
            raise ConfigError(f"{where}.variants: '{name}' is taught by another variant (train.teacher); tune the "
                              f"teacher, not the student")
        table = tables[name]
        finals, searches = [], []
        for point in points:
            values = dict(zip(axes, point))
            label = "".join(f"[{a}={v}]" for a, v in values.items())
            try:
                final = resolve(base, table, values)
                scored = resolve(base, table, values, flatten(search), SEARCH_PROFILE,
                                 {"eval.split": split, "train.eval_every": 0})
            except ConfigError as exc:
                raise ConfigError(f"{where}: variant '{name}' at {label}: {exc}") from None
            overrides = {**flatten(table), **values}
            finals.append(make_variant(name, final, overrides))
            searches.append(make_variant(f"{name}{label}", scored, {**overrides, **flatten(search)}))
        _check_metric(metric, where, finals[0].config)
        if split == "val" and finals[0].config.data.n_val == 0:
            raise ConfigError(f"{where}.split: variant '{name}' has data.n_val = 0: there is no validation split to "
                              f"select on; set data.n_val")
        tuned.append(TunedVariant(name, tuple(axes), tuple(points), tuple(searches), tuple(finals), split, metric,
                                  tuple(seeds), untuned))
    return tuned


def _tuned_names(names: Any, where: str, variants: list, reference: str | None) -> list[str]:
    known = [v.name for v in variants]
    if names is None:
        return [n for n in known if n != reference]
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise ConfigError(f"{where}.variants: expected a non-empty list of variant names, got {names!r}")
    for name in names:
        if name not in known:
            raise ConfigError(f"{where}.variants: no variant '{name}'{did_you_mean(name, known)}; a derived run is "
                              f"not trained and cannot be tuned")
    return list(dict.fromkeys(names))


def _check_metric(metric: Any, where: str, config) -> None:
    """rsum, or a direction's metric the evaluation computes (t2i.R@1, a2t.mAP)."""
    if metric == "rsum":
        return
    direction, _, name = str(metric).partition(".")
    metrics = [f"R@{k}" for k in config.eval.ks] + ["mAP"]
    if direction not in DIRECTIONS or direction not in config.eval.directions or name not in metrics:
        raise ConfigError(f"{where}.metric: expected 'rsum' or DIRECTION.METRIC with a direction of "
                          f"{', '.join(config.eval.directions)} and a metric of {', '.join(metrics)}, got {metric!r}")


def score(metrics: dict, metric: str) -> float | None:
    """The selection metric's value in a record's metrics; None when the run did not measure it."""
    if metric == "rsum":
        value = metrics.get("rsum")
    else:
        direction, _, name = metric.partition(".")
        value = metrics.get(direction, {}).get(name)
    return None if value is None else float(value)
