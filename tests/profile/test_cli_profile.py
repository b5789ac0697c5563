"""`xmbench profile`, black-box."""
import json
from pathlib import Path

import torch

from tests.test_cli import xmbench
from xmbench.profile.trace import validate_chrome_trace

SUITE = Path(__file__).with_name("tiny_profile.toml")


def test_profile_writes_traces_record_and_report(tmp_path):
    traces = tmp_path / "profiles"
    result = xmbench("profile", SUITE, "--variant", "ok", "--records", tmp_path / "records", "--trace-dir", traces,
                     "--no-progress", "--in-process")
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "records" / "tinyprof-profile" / "ok__seed0.json").read_text())
    profile = record["profile"]
    assert validate_chrome_trace(traces / "tinyprof-profile" / "ok__seed0.train.json") > 0
    assert validate_chrome_trace(traces / "tinyprof-profile" / "ok__seed0.inference.json") > 0
    assert {"trace", "memory", "grad_norms", "alignment", "flops", "shape_scaling", "diagnosis"} <= profile.keys()
    assert {"encode.text.b1", "encode.audio.b4", "query.t2i.b4"} <= record["timings"].keys()
    assert record["costs"]["flops.text_per_sample"] > 0 and "mem.tower/text.trainable_weights_bytes" in record["costs"]
    assert record["env"]["matmul_peak_flops_per_s"]["cpu"] > 0
    if not torch.cuda.is_available():  # GPU-only switches: a clear skip, not a crash
        assert "profile.telemetry skipped" in result.stderr and "profile.memory_snapshot skipped" in result.stderr
        assert profile["telemetry"] == {"available": False, "reason": profile["telemetry"]["reason"]}
    for heading in ("Latency (p50)", "Step phases", "Time by component", "Top operators", "Peak memory per phase",
                    "Memory breakdown", "Gradient norms", "Modality pairs, worst first", "Diagnosis"):
        assert heading in result.stdout
    report = xmbench("report", "--markdown", "--records", tmp_path / "records", check=True)
    assert "Time by component" in report.stdout
    html = xmbench("report", "--html", "--records", tmp_path / "records", "--out", tmp_path / "r.html", check=True)
    assert html.returncode == 0 and (tmp_path / "r.html").read_text().count("<img") >= 3


def test_profiling_a_failing_variant_reports_the_failure(tmp_path):
    result = xmbench("profile", SUITE, "--variant", "broken", "--records", tmp_path / "records",
                     "--trace-dir", tmp_path / "profiles", "--no-progress", "--in-process")
    assert result.returncode == 1
    assert "broken seed=0: FAILED: ConfigError: model.factory: cannot import 'no_such_module:factory'" in result.stderr
    assert "Failed: ConfigError" in result.stdout


def test_unwritable_trace_directory_fails_before_running(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = xmbench("profile", SUITE, "--records", tmp_path / "records", "--trace-dir", blocker / "sub")
    assert result.returncode == 2 and f"cannot write traces to {blocker / 'sub'}" in result.stderr
    assert not (tmp_path / "records").exists()
