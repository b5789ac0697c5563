"""Reuse that cannot lie: a record is reused only when everything that shaped it is as it is now."""
import json

from tests.test_cli import ROOT
from xmbench.bench.record import read_record, write_record
from xmbench.bench.runner import run_suite
from xmbench.suite import parse_suite


def test_a_fault_run_never_reuses_and_its_records_are_never_reused(tmp_path, monkeypatch, capsys):
    """In this process (the CLI's run and gate are black-box tested in tests/test_cli.py)."""
    from xmbench.bench import baseline, gate
    from xmbench.bench.compare import compare, is_timing
    from xmbench.suite import load_suite

    # the CI suite's lora_r8 at two seeds: a regression there is big enough to see
    smoke = (ROOT / "suites/smoke.toml").read_text().replace("seeds = [0, 1, 2, 3, 4, 5, 6, 7]", "seeds = [0, 1]")
    path = tmp_path / "smoke.toml"
    path.write_text(smoke.replace('[variants.lora_r4]\n"model.*.adapter.rank" = 4\n', ""))
    suite = load_suite(path)
    rules = [r for r in suite.gates if not is_timing(r.metric)]

    def run_and_gate():
        records = run_suite(suite, tmp_path / "records", tmp_path / "art", progress=False, isolate=False)
        return records, gate.check(compare(records, baseline.load("smoke", tmp_path / "baselines", "box")[0]), rules)

    first = run_suite(suite, tmp_path / "records", tmp_path / "art", progress=False, isolate=False)
    baseline.accept(first, "smoke", tmp_path / "baselines", "box", force=True)
    capsys.readouterr()
    monkeypatch.setenv("XMBENCH_FAULT", "embedding_noise=1.0")
    _, faulty = run_and_gate()
    assert capsys.readouterr().err.count("not reusing the stored record: XMBENCH_FAULT is set") == 2
    assert not faulty.passed and any("dropped" in v.reason for v in faulty.violations)
    monkeypatch.delenv("XMBENCH_FAULT")
    _, clean = run_and_gate()
    err = capsys.readouterr().err
    assert err.count("not reusing the stored record: the record was made with XMBENCH_FAULT=embedding_noise=1.0") == 2
    assert clean.passed, clean.violations
    _, again = run_and_gate()
    assert again.passed and capsys.readouterr().err.count("reusing complete record") == 2


def test_changed_packages_code_or_data_mean_a_fresh_run(tiny_base, tmp_path, capsys):
    suite = parse_suite({"suite": {"name": "re"}, "base": tiny_base, "variants": {"a": {}}})
    (first,) = run_suite(suite, tmp_path / "r", tmp_path / "a", progress=False, isolate=False)
    assert first.env["provenance"]["xmbench_source"] and first.env["provenance"]["fault"] is None
    path = tmp_path / "r" / "re" / "a__seed0.json"
    for key, value, reason in (("packages", {"torch": "1.0"}, "package versions changed"),
                               ("xmbench_source", "0" * 16, "xmbench's code changed"),
                               ("data", "elsewhere", "the data files changed")):
        stale = read_record(path)
        stale.env["provenance"][key] = value
        write_record(stale, tmp_path / "r")
        (again,) = run_suite(suite, tmp_path / "r", tmp_path / "a", progress=False, isolate=False)
        assert again.created_at >= stale.created_at and again.env["provenance"][key] != value
        assert f"not reusing the stored record: {reason} since the record was made" in capsys.readouterr().err
    (reused,) = run_suite(suite, tmp_path / "r", tmp_path / "a", progress=False, isolate=False)
    assert "reusing complete record" in capsys.readouterr().err
    assert json.loads(path.read_text())["created_at"] == reused.created_at
