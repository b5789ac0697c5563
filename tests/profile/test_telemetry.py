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
