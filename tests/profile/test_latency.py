import pytest
import torch

from xmbench.profile.latency import cycled_rows, probe_latency, time_callable, time_interleaved
from xmbench.profile.machine_reference import reference_workload
from xmbench.profile.scaling import fit_line, probe_shape_scaling
from xmbench.report.profile import latency_table


def test_time_callable_reaches_count_and_time():
    calls = []
    m = time_callable(lambda: calls.append(1), warmup=2, min_count=7, min_time_s=0.0)
    assert len(m.samples) == 7 and len(calls) == 9
    assert set(m.summary()) >= {"p50", "p90", "p99", "mean", "stdev"}


def test_time_interleaved_alternates_the_path_and_the_reference_call_for_call():
    calls = []
    path, reference = time_interleaved(lambda: calls.append("path"), lambda: calls.append("ref"), warmup=1,
                                       min_count=4, min_time_s=0.0)
    assert calls == ["path", "ref"] * 5 and len(path.samples) == len(reference.samples) == 4


def test_the_machine_reference_is_a_fixed_workload():
    assert reference_workload() == reference_workload()


def test_cycled_rows():
    assert cycled_rows(3, 7).tolist() == [0, 1, 2, 0, 1, 2, 0]


def test_probe_latency_covers_every_modality_direction_and_batch(tiny_setup):
    config, model, _, test_split, _ = tiny_setup
    timings = probe_latency(model, test_split, ["t2i", "a2t"], [1, 8], min_count=3, min_time_s=0.0)
    expected = {f"encode.{m}.b{b}" for m in ("text", "image", "audio") for b in (1, 8)}
    expected |= {f"query.{d}.b{b}" for d in ("t2i", "a2t") for b in (1, 8)}
    assert set(timings) == expected
    assert all(len(m.samples) >= 3 and min(m.samples) > 0 for m in timings.values())
    table = latency_table({k: v.to_dict() for k, v in timings.items()})
    assert table["encode.text"].keys() == {1, 8} and table["query.t2i"][8] == timings["query.t2i.b8"].percentile(50)


def test_fit_line_is_exact_on_a_line():
    fit = fit_line([1, 2, 3, 4], [3, 5, 7, 9])
    assert fit["slope"] == pytest.approx(2) and fit["intercept"] == pytest.approx(1) and fit["r2"] == pytest.approx(1)


def test_shape_scaling_of_the_reference_towers(tiny_setup):
    config, model, *_ = tiny_setup
    result = probe_shape_scaling(model, config, batch_size=2, min_count=2, min_time_s=0.0)
    assert set(result) == {"text", "image", "audio"}
    assert result["image"]["x"] == [32.0**2, 64.0**2, 96.0**2] and result["image"]["x_unit"] == "pixels"
    assert result["text"]["x"] == [8.0, 16.0, 32.0] and result["audio"]["x"] == [0.5, 1.0, 1.5]
    assert all("fit" in entry and not entry["errors"] for entry in result.values())


def test_shape_scaling_records_sizes_a_user_model_refuses(tiny_config):
    class TextOnlyUpTo16:
        modalities = ("text",)

        def encode(self, modality, inputs):
            if inputs["input_ids"].shape[1] > 16:
                raise ValueError("sequence too long")
            return torch.zeros(len(inputs["input_ids"]), 4)

    result = probe_shape_scaling(TextOnlyUpTo16(), tiny_config, batch_size=2, min_count=2, min_time_s=0.0)
    assert result["text"]["x"] == [8.0, 16.0] and "sequence too long" in result["text"]["errors"]["32"]


def test_latency_is_timed_on_the_models_device(tiny_setup, device):
    config, model, _, test_split, _ = tiny_setup
    model.to(device)
    timings = probe_latency(model, test_split, ["t2i"], [2], min_count=3, min_time_s=0.0)
    assert {"encode.text.b2", "encode.image.b2", "query.t2i.b2"} <= set(timings)
    assert all(min(m.samples) > 0 for m in timings.values())
