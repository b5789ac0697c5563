"""Reuse that cannot lie: a record is reused only when everything that shaped it is as it is now."""
import json

from tests.test_cli import ROOT, xmbench
from xmbench.bench.record import read_record, write_record
from xmbench.bench.runner import run_suite
from xmbench.suite import parse_suite


def test_a_fault_run_never_reuses_and_its_records_are_never_reused(tmp_path):
    # the CI suite's lora_r8 at two seeds: a regression there is big enough to see
    smoke = (ROOT / "suites/smoke.toml").read_text().replace("seeds = [0, 1, 2, 3, 4, 5, 6, 7]", "seeds = [0, 1]")
    suite = tmp_path / "smoke.toml"
    suite.write_text(smoke.replace('[variants.lora_r4]\n"model.*.adapter.rank" = 4\n', ""))
    records, baselines = tmp_path / "records", tmp_path / "baselines"
    common = ["--records", records, "--artifacts", tmp_path / "art", "--no-progress", "--in-process",
              "--baselines", baselines, "--machine-class", "box"]
    xmbench("run", suite, *common, check=True)
    xmbench("baseline", "accept", suite, "--records", records, "--baselines", baselines, "--machine-class", "box",
            "--force", check=True)
    faulty = xmbench("run", suite, *common, "--gate", "--no-timing-gates", env_extra={"XMBENCH_FAULT": "embedding_noise=1.0"})
    assert faulty.returncode == 1, faulty.stderr
    assert faulty.stderr.count("not reusing the stored record: XMBENCH_FAULT is set") == 2
    assert "FAILED ❌" in faulty.stdout and "dropped" in faulty.stdout
    clean = xmbench("run", suite, *common, "--gate", "--no-timing-gates")
    assert clean.stderr.count("not reusing the stored record: the record was made with XMBENCH_FAULT=embedding_noise=1.0") == 2
    assert clean.returncode == 0, clean.stdout
    again = xmbench("run", suite, *common, "--gate", "--no-timing-gates")
    assert again.returncode == 0 and again.stderr.count("reusing complete record") == 2


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
