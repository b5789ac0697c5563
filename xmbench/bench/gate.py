"""Gates: rules declared in a suite's [gates] table, checked against comparison deltas.

    [gates]
    "*.R@1" = 1.0            # quality, every direction: may drop at most 1 percentage point
    "t2i.mAP" = 2.0          # one direction
    query_latency_s = "10%"  # timing median: may rise at most 10%
    trainable_params = 0     # deterministic cost: may not grow

A rule fails only on a significant change (see compare.py) beyond its limit; a relative timing
rule only when a one-sided test on the current values shifted down by the limit still finds them
slower (the data show a rise of more than the limit). A new failure, and a variant whose config
no longer matches the baseline, fail the gate too.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from xmbench.bench.compare import (
    EXACT_COST_PREFIXES,
    EXACT_COSTS,
    INCOMPARABLE,
    NEW_FAILURE,
    QUALITY_METRICS,
    TIMING_PREFIXES,
    TIMINGS,
    WORSE,
    Delta,
    rise_alpha,
    rise_beyond,
)
from xmbench.config import DIRECTIONS
from xmbench.errors import ConfigError, did_you_mean

DEFAULT_GATES = {"*.R@1": 2.0, "*.mAP": 2.0, "query_latency_s": "10%", "trainable_params": 0, "adapter_bytes": 0}


@dataclass(frozen=True)
class GateRule:
    key: str  # as written in the suite
    metric: str  # "R@1", "query_latency_s", ...
    direction: str | None  # a direction, "*" for all, None for costs and timings
    limit: float
    relative: bool  # limit is a fraction of the baseline

    def applies_to(self, delta: Delta) -> bool:
        if self.direction is None:
            return delta.metric == self.metric
        direction, _, metric = delta.metric.partition(" ")
        return metric == self.metric and self.direction in ("*", direction)

    def violated_by(self, delta: Delta) -> str | None:
        """Why the delta breaks this rule, or None."""
        if delta.mark != WORSE or not self.applies_to(delta):
            return None
        if delta.kind == "quality":
            drop = delta.baseline - delta.current
            if drop > self.limit:
                low, high = delta.interval or (float("nan"), float("nan"))
                return (f"{delta.metric} dropped {drop:.2f} points ({delta.baseline:.2f} → {delta.current:.2f}; "
                        f"95% interval of the change [{low:.2f}, {high:.2f}]), more than the {self.limit:g} allowed")
            return None
        if self.relative:  # the judged ratio: for timings, over the machine reference when both sides timed it
            exceeded = delta.ratio is not None and delta.ratio - 1.0 > self.limit
        else:
            exceeded = delta.current - delta.baseline > self.limit
        beyond = rise_beyond(delta, self.limit) if self.relative else None
        if exceeded and (beyond is None or beyond < rise_alpha(delta)):
            limit = f"{self.limit:.0%}" if self.relative else f"{self.limit:g}"
            confidence = "" if beyond is None else f"; p={beyond:.2g} that it rose by more than {limit}"
            return (f"{delta.metric} rose from {delta.baseline:.6g} to {delta.current:.6g}, "
                    f"more than the {limit} allowed ({delta.note}{confidence})")
        return None


@dataclass
class Violation:
    variant: str
    rule: str
    reason: str


@dataclass
class Verdict:
    violations: list[Violation]
    checked: int

    @property
    def passed(self) -> bool:
        return not self.violations


def parse_gates(table: dict) -> list[GateRule]:
    """Rules from a suite's [gates] table (defaults when absent); unknown names fail with a did-you-mean."""
    rules = []
    for key, value in (table or DEFAULT_GATES).items():
        rules.append(_parse_rule(str(key), value))
    return rules


# Probe measurements a gate may name: latency probes, FLOPs, the memory breakdown's bytes.
PROBE_METRIC = re.compile(r"^(encode\.(text|image|audio)\.b\d+|query\.[tia]2[tia]\.b\d+|"
                          r"flops\.(text|image|audio)_per_sample|mem\.[\w/]+\.\w+_bytes)$")


def _parse_rule(key: str, value) -> GateRule:
    where = f"gates.{key}"
    if "." in key and not key.startswith(TIMING_PREFIXES + EXACT_COST_PREFIXES):
        direction, _, metric = key.partition(".")
        if direction != "*" and direction not in DIRECTIONS:
            raise ConfigError(f"{where}: unknown direction '{direction}'{did_you_mean(direction, DIRECTIONS)}; "
                              f"known: *, {', '.join(DIRECTIONS)}")
        if metric not in QUALITY_METRICS:
            raise ConfigError(f"{where}: unknown quality metric '{metric}'{did_you_mean(metric, QUALITY_METRICS)}; "
                              f"known: {', '.join(QUALITY_METRICS)}")
    else:
        direction, metric = None, key
        known = TIMINGS + EXACT_COSTS
        if metric not in known and not PROBE_METRIC.match(metric):
            hint = did_you_mean(metric, known + tuple(f"*.{m}" for m in QUALITY_METRICS))
            raise ConfigError(f"{where}: unknown gate metric '{metric}'{hint}; known: {', '.join(known)}, "
                              f"a probe's encode.MODALITY.bN / query.DIRECTION.bN / flops.MODALITY_per_sample, "
                              f"or DIRECTION.METRIC for quality")
    relative = isinstance(value, str)
    try:
        limit = float(value.rstrip("%")) / 100 if relative else float(value)
    except (ValueError, TypeError, AttributeError):
        raise ConfigError(f"{where}: expected a number or a percentage like \"10%\", got {value!r}") from None
    if relative and not str(value).endswith("%") or isinstance(value, bool) or limit < 0:
        raise ConfigError(f"{where}: expected a non-negative number or a percentage like \"10%\", got {value!r}")
    return GateRule(key, metric, direction, limit, relative)


def check(deltas: list[Delta], rules: list[GateRule]) -> Verdict:
    violations = []
    for delta in deltas:
        if delta.mark == NEW_FAILURE:
            violations.append(Violation(delta.variant, "no new failures", f"the run failed: {delta.note}"))
        elif delta.mark == INCOMPARABLE:
            violations.append(Violation(delta.variant, "comparable config", delta.note))
        for rule in rules:
            reason = rule.violated_by(delta)
            if reason:
                violations.append(Violation(delta.variant, _rule_text(rule), reason))
    return Verdict(violations, len(deltas))


def _rule_text(rule: GateRule) -> str:
    return f'{rule.key} = "{rule.limit:.0%}"' if rule.relative else f"{rule.key} = {rule.limit:g}"
