import pytest

from xmbench.bench.compare import Delta
from xmbench.bench.gate import DEFAULT_GATES, check, parse_gates
from xmbench.errors import ConfigError


def quality(current, baseline=50.0, mark="worse", direction="t2i"):
    return Delta("v", f"{direction} R@1", "quality", baseline, current, mark, (current - baseline - 1, current - baseline + 1))


def test_defaults_apply_when_a_suite_declares_none():
    assert [r.key for r in parse_gates({})] == list(DEFAULT_GATES)


def test_quality_rule_fails_only_beyond_its_limit_and_when_significant():
    rules = parse_gates({"*.R@1": 1.0})
    assert check([quality(49.5)], rules).passed  # a significant drop of 0.5 points is allowed
    verdict = check([quality(47.0)], rules)
    assert not verdict.passed
    (violation,) = verdict.violations
    assert violation.rule == "*.R@1 = 1" and "t2i R@1 dropped 3.00 points" in violation.reason
    assert check([quality(40.0, mark="not significant")], rules).passed


def test_direction_specific_rule():
    rules = parse_gates({"a2t.R@1": 1.0})
    assert check([quality(40.0, direction="t2i")], rules).passed
    assert not check([quality(40.0, direction="a2t")], rules).passed


def test_relative_timing_and_exact_cost_rules():
    rules = parse_gates({"query_latency_s": "10%", "trainable_params": 0})
    slow = Delta("v", "query_latency_s", "timing", 0.010, 0.0125, "worse", note="median ×1.25")
    assert "query_latency_s rose from 0.01 to 0.0125, more than the 10% allowed" in check([slow], rules).violations[0].reason
    assert check([Delta("v", "query_latency_s", "timing", 0.010, 0.0105, "worse")], rules).passed
    grown = Delta("v", "trainable_params", "cost", 100, 101, "worse")
    assert check([grown], rules).violations[0].rule == "trainable_params = 0"


def test_a_relative_timing_rule_judges_the_ratio_over_the_machine_reference():
    rules = parse_gates({"query_latency_s": "10%"})
    busy_machine = Delta("v", "query_latency_s", "timing", 0.010, 0.013, "worse", change=1.02)
    assert check([busy_machine], rules).passed  # raw ×1.3, but the reference slowed as much
    slower_model = Delta("v", "query_latency_s", "timing", 0.010, 0.010, "worse", change=1.3)
    assert not check([slower_model], rules).passed


def test_probe_measurements_can_be_gated():
    rules = parse_gates({"encode.text.b8": "10%", "query.t2a.b1": "20%", "flops.image_per_sample": 0})
    assert [r.metric for r in rules] == ["encode.text.b8", "query.t2a.b1", "flops.image_per_sample"]
    assert all(r.direction is None for r in rules)
    grown = Delta("v", "flops.image_per_sample", "cost", 100, 120, "worse")
    assert check([grown], rules).violations[0].rule == "flops.image_per_sample = 0"
    with pytest.raises(ConfigError, match="unknown gate metric 'encode.txt.b8'"):
        parse_gates({"encode.txt.b8": "10%"})


def test_new_failures_and_changed_configs_fail():
    verdict = check([Delta("v", "status", "status", None, None, "new failure", note="Crash"),
                     Delta("w", "config", "status", None, None, "incomparable", note="config changed")], [])
    assert [v.rule for v in verdict.violations] == ["no new failures", "comparable config"]


@pytest.mark.parametrize("table, message", [
    ({"t2x.R@1": 1}, r"gates\.t2x\.R@1: unknown direction 't2x' \(did you mean 't2i'\?\)"),
    ({"*.R@2": 1}, r"unknown quality metric 'R@2'"),
    ({"query_latncy_s": "10%"}, r"did you mean 'query_latency_s'"),
    ({"query_latency_s": "ten"}, r"expected a number or a percentage"),
    ({"trainable_params": -1}, r"non-negative"),
])
def test_bad_rules_are_config_errors(table, message):
    with pytest.raises(ConfigError, match=message):
        parse_gates(table)


def test_a_timing_rule_fails_only_when_the_data_show_a_rise_beyond_the_limit():
    import numpy as np

    rules = parse_gates({"query_latency_s": "15%"})
    base = np.log(0.001 * np.array([1.00, 1.04, 0.97, 1.06, 0.99, 1.02, 0.95, 1.08]))
    spread = np.array([1.00, 1.06, 0.96, 1.08, 0.98, 1.03, 0.94, 1.10])

    def timing(ratio):
        current = base + np.log(ratio) + np.log(spread) - np.log(spread).mean()
        return Delta("v", "query_latency_s", "timing", 0.001, 0.001 * ratio, "worse", change=ratio,
                     evidence=(current, base, "processes"))

    assert check([timing(1.17)], rules).passed  # above 15%, but within the spread of the processes
    failed = check([timing(1.40)], rules)
    assert not failed.passed and "that it rose by more than 15%" in failed.violations[0].reason

