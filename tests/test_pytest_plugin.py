"""The pytest plugin, black-box through pytester: suites collected, timed, gated."""
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest_plugins = ["pytester"]

SUITE = (ROOT / "tests" / "bench" / "three_variants.toml").read_text().replace('name = "three"', 'name = "plug"')


@pytest.fixture
def suite_dir(pytester):
    suites = pytester.mkdir("suites")
    (suites / "plug.toml").write_text(SUITE)
    return suites


def test_variants_become_benchmarked_tests_with_xmbench_extra_info(pytester, suite_dir):
    result = pytester.runpytest_subprocess("suites/", "-v", "--benchmark-autosave", "--xmbench-rounds", "5", "-p",
                                           "no:cacheprovider")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*plug.toml::a PASSED*", "*plug.toml::c PASSED*", "*xmbench*", "*## plug*"])
    saved = list((pytester.path / ".benchmarks").rglob("*.json"))
    assert len(saved) == 1
    benchmarks = json.loads(saved[0].read_text())["benchmarks"]
    assert [b["name"] for b in benchmarks] == ["a", "b", "c"]
    extra = benchmarks[0]["extra_info"]["xmbench"]
    assert extra["suite"] == "plug" and set(extra["metrics_seed0"]) == {"t2i", "i2t", "t2a", "a2t", "i2a", "a2i"}
    assert benchmarks[0]["stats"]["rounds"] == 5

    compared = pytester.runpytest_subprocess("suites/", "--benchmark-compare", "--xmbench-rounds", "5",
                                             "-p", "no:cacheprovider")
    compared.assert_outcomes(passed=3)
    compared.stdout.fnmatch_lines(["*benchmark: 6 tests*"])  # each variant: the saved run beside this one
    rows = {line.split()[0] + " " + line.split()[1] for line in compared.stdout.lines if line.startswith(("a (", "b ("))}
    assert {"a (NOW)", "b (NOW)"} <= rows and any(r.startswith("a (0001") for r in rows)
    # pytest-benchmark's own CLI (its module has no __main__) reads the saved file
    cli = pytester.run(sys.executable, "-c", "from pytest_benchmark.cli import main; main()", "compare", str(saved[0]))
    assert cli.ret == 0
    cli.stdout.fnmatch_lines(["*benchmark: 3 tests*", "Name (time in *"])
    assert {line.split()[0] for line in cli.stdout.lines if line[:2] in ("a ", "b ", "c ")} == {"a", "b", "c"}


def test_quality_gate_fails_the_test_with_the_rule(pytester, monkeypatch):
    # the smoke suite learns enough in seconds for injected noise to show; its lora_r8 at one seed keeps it quick
    smoke = (ROOT / "suites" / "smoke.toml").read_text().replace("seeds = [0, 1, 2, 3, 4, 5, 6, 7]", "seeds = [0]")
    smoke = smoke.replace('[variants.lora_r4]\n"model.*.adapter.rank" = 4\n', "")
    pytester.mkdir("suites").joinpath("smoke.toml").write_text(smoke)
    args = ["suites/", "--xmbench-rounds", "3", "--xmbench-baselines", "base", "--xmbench-machine-class", "box",
            "-p", "no:cacheprovider"]
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
    accepted = pytester.run(sys.executable, "-m", "xmbench.cli", "baseline", "accept", "suites/smoke.toml", "--force",
                            "--baselines", "base", "--machine-class", "box")
    assert accepted.ret == 0, accepted.stderr.str()
    monkeypatch.setenv("XMBENCH_FAULT", "embedding_noise=2.0")
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*xmbench gate failed for lora_r8:*", "*R@1 = 2: * R@1 dropped *"])


def test_a_malformed_suite_is_a_collection_error(pytester):
    suites = pytester.mkdir("suites")
    (suites / "bad.toml").write_text("[variants.x]\n\"train.stepz\" = 3\n")
    result = pytester.runpytest_subprocess("suites/", "-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*did you mean 'steps'*"])


def test_a_broken_suite_outside_a_suites_folder_fails_collection(pytester):
    pytester.makefile(".toml", mysuite="[suite]\nname = 'x'\n[variants.a\n")  # malformed TOML
    pytester.makefile(".toml", notes="title = 'not a suite'\n")  # a TOML file that is no suite is left alone
    result = pytester.runpytest_subprocess(".", "-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*ERROR collecting mysuite.toml*", "*malformed TOML*"])
    assert "notes.toml" not in result.stdout.str()
