import pytest
import torch

from xmbench.profile.telemetry import GpuTelemetry, nvml_unavailable_reason


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only path")
def test_telemetry_is_cleanly_absent_without_a_gpu():
    assert "no CUDA device" in nvml_unavailable_reason()
    probe = GpuTelemetry()
    probe.on_train_start(None)
    probe.phase_ended("optimizer")
    probe.on_train_end(None)
    assert probe.result() == {"available": False, "reason": nvml_unavailable_reason()}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU and NVML")
def test_telemetry_samples_power_and_utilisation_on_a_gpu():
    import time

    probe = GpuTelemetry(interval_s=0.01)
    probe.on_train_start(None)
    x = torch.randn(4096, 4096, device="cuda")
    for _ in range(20):
        x = x @ x.T / 4096
    torch.cuda.synchronize()
    time.sleep(0.1)
    probe.phase_ended("optimizer")
    probe.on_train_end(None)
    result = probe.result()
    assert result["available"] and result["n_samples"] > 0 and result["mean"]["power_w"] > 0
    assert result["max_power_w"] >= result["mean"]["power_w"]
