"""pytest plugin (entry point `pytest11`): suite files become tests, timed by pytest-benchmark.

`pytest suites/` collects every TOML file that holds a suite; each variant is one test item that
runs the variant for every seed of the suite, writes xmbench records, and then times the trained
model's online query path with the `benchmark` fixture, so that `--benchmark-autosave`,
`--benchmark-compare` and `--benchmark-compare-fail=median:30%` work as usual. The saved JSON
carries xmbench's metrics and costs in `extra_info["xmbench"]`. When the suite has a baseline
for this machine class, the suite's quality and cost gates are checked and a violation fails
the test with the rule and the reason (timing gates are left to pytest-benchmark here).

Options:
    --xmbench-records DIR      where records are written (default .xmbench/records)
    --xmbench-baselines DIR    baselines folder (default baselines)
    --xmbench-machine-class X  override the machine class of the baseline
    --xmbench-no-gate          run and time only; do not check the suite's gates
    --xmbench-rounds N         pytest-benchmark rounds of the query path (default 50)
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest


def pytest_addoption(parser) -> None:
    group = parser.getgroup("xmbench", "xmbench suites")
    group.addoption("--xmbench-records", default=None, help="records folder (default .xmbench/records)")
    group.addoption("--xmbench-baselines", default="baselines", help="baselines folder")
    group.addoption("--xmbench-machine-class", default=None, help="override the baseline's machine class")
    group.addoption("--xmbench-no-gate", action="store_true", help="do not check the suites' gates")
    group.addoption("--xmbench-rounds", type=int, default=50, help="timed rounds of the query path")


def pytest_collect_file(file_path: Path, parent):
    if file_path.suffix == ".toml" and _is_suite(file_path):
        return SuiteFile.from_parent(parent, path=file_path)
    return None


SUITE_TABLE = re.compile(r"^\s*\[\s*(suite|variants|base|matrix|derived|gates)\b", re.MULTILINE)


def _is_suite(path: Path) -> bool:
    """A TOML file with a suite's tables; one that does not parse counts when it looks like a suite
    (or lies in a suites/ folder), so that a broken suite fails collection instead of vanishing."""
    try:
        text = path.read_text()
    except OSError:
        return False
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return path.parent.name == "suites" or bool(SUITE_TABLE.search(text))
    return "suite" in raw or "variants" in raw


class SuiteFile(pytest.File):
    def collect(self):
        from xmbench.suite import load_suite

        suite = load_suite(self.path)  # a ConfigError here is reported as a collection error
        for variant in suite.variants + suite.derived:  # derived runs after the variants they combine
            yield pytest.Function.from_parent(self, name=variant.name, callobj=_variant_test(suite, variant))


def _variant_test(suite, variant):
    def test_variant(benchmark, request):
        _run_variant_test(suite, variant, benchmark, request.config)

    test_variant.__doc__ = f"suite {suite.name}, variant {variant.name}"
    return test_variant


def _run_variant_test(suite, variant, benchmark, config) -> None:
    from xmbench.bench.env import capture
    from xmbench.bench.record import DEFAULT_RECORDS, write_record
    from xmbench.bench.runner import DEFAULT_ARTIFACTS, run_variant
    from xmbench.bench.stages import query_function
    from xmbench.registry import load_builtins

    load_builtins()
    records_dir = Path(config.getoption("xmbench_records") or DEFAULT_RECORDS)
    trained: dict = {}
    records = []
    for seed in suite.seeds:
        record = run_variant(suite.name, variant, seed, DEFAULT_ARTIFACTS / suite.name, progress=False,
                             on_model=lambda model, split: trained.update(model=model, split=split))
        record.env = capture(variant.config)
        record.reference = suite.reference_for(variant.name)
        write_record(record, records_dir)
        records.append(record)
    config.stash.setdefault(_RECORDS, []).extend(records)
    failed = [r for r in records if not r.ok]
    if failed:
        pytest.fail(f"{variant.name} seed {failed[0].seed} failed: {failed[0].error}", pytrace=False)
    benchmark.extra_info["xmbench"] = _summary(records)
    benchmark.pedantic(query_function(trained["model"], trained["split"], variant.config),
                       rounds=config.getoption("xmbench_rounds"), iterations=1, warmup_rounds=5)
    if not config.getoption("xmbench_no_gate"):
        _check_gates(suite, variant, records, config)


def _summary(records) -> dict:
    first = records[0]
    metrics = {d: {k: v for k, v in m.items() if k in ("R@1", "R@5", "R@10", "mAP")}
               for d, m in first.metrics.items() if isinstance(m, dict)}
    return {"suite": first.suite, "variant": first.variant, "variant_id": first.variant_id,
            "seeds": [r.seed for r in records], "metrics_seed0": metrics, "rsum": [r.metrics.get("rsum") for r in records],
            "costs": {k: v for k, v in first.costs.items() if isinstance(v, (int, float))}}


def _check_gates(suite, variant, records, config) -> None:
    from xmbench.bench import baseline, gate
    from xmbench.bench.compare import compare, is_timing
    from xmbench.errors import XmbenchError

    try:
        base_records, _ = baseline.load(suite.name, Path(config.getoption("xmbench_baselines")),
                                        config.getoption("xmbench_machine_class"))
    except XmbenchError:
        return  # no baseline here yet: nothing to gate against (the terminal summary says so)
    deltas = compare(records, [r for r in base_records if r.variant == variant.name])
    rules = [rule for rule in suite.gates if not is_timing(rule.metric)]
    verdict = gate.check(deltas, rules)
    if not verdict.passed:
        lines = [f"xmbench gate failed for {variant.name}:"] + [f"  {v.rule}: {v.reason}" for v in verdict.violations]
        pytest.fail("\n".join(lines), pytrace=False)


_RECORDS = pytest.StashKey[list]()


def pytest_terminal_summary(terminalreporter, config) -> None:
    records = config.stash.get(_RECORDS, [])
    if not records:
        return
    from xmbench.report.markdown import render_markdown

    terminalreporter.section("xmbench")
    terminalreporter.write(render_markdown(records))
