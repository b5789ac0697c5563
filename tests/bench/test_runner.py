import pytest
import torch

from tests.conftest import user_model
from xmbench.bench.record import read_records
from xmbench.bench.runner import run_suite
from xmbench.config import DIRECTIONS
from xmbench.suite import parse_suite


def suite_of(base, variants=None, seeds=(0,)):
    return parse_suite({"suite": {"name": "t", "seeds": list(seeds)}, "base": base,
                        "variants": variants or {"lora": {}}})


def test_records_hold_metrics_for_six_directions_costs_and_curve(tiny_base, tmp_path):
    (record,) = run_suite(suite_of(tiny_base), tmp_path / "rec", tmp_path / "art", progress=False, isolate=False)
    assert record.ok, record.error
    assert set(DIRECTIONS) <= set(record.metrics)
    assert record.metrics["i2t"]["positives_per_query"] == 5.0 and record.metrics["t2i"]["positives_per_query"] == 1.0
    assert record.metrics["t2i"]["n_queries"] == 24 * 5 and record.metrics["t2i"]["n_gallery"] == 24
    costs = record.costs
    assert costs["train_steps"] == 6 and costs["trainable_params"] < costs["total_params"]
    assert costs["adapter_bytes"] > 0 and costs["peak_rss_mb"] > 0
    assert costs["run_wall_s"] > costs["train_wall_s"] and 0 <= costs["foreign_cpu_share"] <= 1
    assert [p["step"] for p in record.curve] == [3, 6]
    assert set(record.curve[0]["val_r1"]) == set(DIRECTIONS)
    assert record.env["packages"]["torch"] == torch.__version__.split("+")[0] or record.env["packages"]["torch"]
    assert (tmp_path / "art" / "t" / "lora__seed0" / "adapters" / "text" / "adapter_config.json").exists()
    assert len(record.per_query["t2i"]["first_rank"]) == 120
    hard = record.per_query["i2t"]["hard_negative_rows"]  # items with a known hard negative (the built-in data knows)
    assert 0 < len(hard) < 24 and record.per_query["a2t"]["hard_negative_rows"] == hard
    assert record.per_query["t2i"]["hard_negative_rows"] == [5 * item + k for item in hard for k in range(5)]


def test_same_seed_gives_identical_metrics(tiny_base, tmp_path):
    a = run_suite(suite_of(tiny_base), tmp_path / "a", tmp_path / "art", progress=False, isolate=False)[0]
    b = run_suite(suite_of(tiny_base), tmp_path / "b", tmp_path / "art", progress=False, isolate=False)[0]
    assert a.metrics == b.metrics and a.per_query == b.per_query


def test_rerun_reuses_complete_records_unless_forced(tiny_base, tmp_path):
    suite = suite_of(tiny_base)
    first = run_suite(suite, tmp_path / "rec", tmp_path / "art", progress=False, isolate=False)[0]
    again = run_suite(suite, tmp_path / "rec", tmp_path / "art", progress=False, isolate=False)[0]
    assert again.created_at == first.created_at and again.costs == first.costs
    forced = run_suite(suite, tmp_path / "rec", tmp_path / "art", progress=False, force=True, isolate=False)[0]
    assert forced.costs["train_wall_s"] != first.costs["train_wall_s"]


class NanModel(torch.nn.Module):
    modalities = ("text", "image", "audio")

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(float("nan")))

    def encode(self, modality, inputs):
        return torch.ones(len(next(iter(inputs.values()))), 4) * self.w


def nan_model(config):
    return NanModel()


def test_a_failing_variant_is_recorded_and_the_suite_goes_on(tiny_base, tmp_path):
    suite = suite_of(tiny_base, {"broken": user_model("tests.bench.test_runner:nan_model"), "fine": {}})
    broken, fine = run_suite(suite, tmp_path / "rec", tmp_path / "art", progress=False, isolate=False)
    assert broken.status == "failed" and "NonFiniteLossError: loss became nan at step 0" in broken.error
    assert broken.metrics == {} and fine.ok
    assert [r.status for r in read_records(tmp_path / "rec")] == ["failed", "ok"]


@pytest.mark.parametrize("missing", ["image"])
def test_a_dataset_without_a_modality_skips_its_directions(tiny_base, tmp_path, missing):
    from xmbench.data.manifest import write_manifest
    from xmbench.data.synthetic import make_split

    splits = [make_split(s, n, "target", image_size=32, audio_seconds=0.5) for s, n in
              (("train", 24), ("val", 8), ("test", 12))]
    for split in splits:
        split.images = None
    manifest = write_manifest(splits, tmp_path / "set")
    base = {**tiny_base, "data": {**tiny_base["data"], "name": "manifest", "manifest": str(manifest)}}
    (record,) = run_suite(suite_of(base), tmp_path / "rec", tmp_path / "art", progress=False, isolate=False)
    assert record.ok, record.error
    assert set(d for d in record.metrics if d != "rsum") == {"t2a", "a2t"}


def test_a_run_beside_another_job_is_flagged(tiny_base, tmp_path, monkeypatch, capsys):
    import xmbench.bench.runner as runner

    class Busy:  # what the meter says when another process took half the CPUs
        share = 0.5

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

    monkeypatch.setattr(runner, "ContentionMeter", Busy)
    (record,) = run_suite(suite_of(tiny_base), tmp_path / "rec", tmp_path / "art", progress=False, isolate=False)
    assert record.costs["foreign_cpu_share"] == 0.5
    assert "lora seed=0: other processes used 50% of the CPUs during this run: its timings are not its own" \
        in capsys.readouterr().err
