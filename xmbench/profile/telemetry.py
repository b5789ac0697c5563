"""GPU telemetry through NVML (nvidia-ml-py): power, energy, utilisation, memory.

Cleanly absent without a GPU: `GpuTelemetry.available()` says why not, and the record then
holds {"available": false, "reason": ...} instead of numbers.
"""
from __future__ import annotations

import statistics
import threading

import torch

from xmbench.train.hooks import Callback


def nvml_unavailable_reason() -> str | None:
    """None when NVML telemetry can run here, else why not."""
    if not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available() is False)"
    try:
        import pynvml  # from nvidia-ml-py

        pynvml.nvmlInit()
    except Exception as exc:  # noqa: BLE001 — a missing driver library raises its own error types
        return f"NVML unavailable: {type(exc).__name__}: {exc}"
    return None


class GpuTelemetry(Callback):
    """Samples device 0 every `interval_s` while training; energy from the board's counter."""

    def __init__(self, interval_s: float = 0.05, device_index: int = 0):
        self.interval_s, self.device_index = interval_s, device_index
        self.reason = nvml_unavailable_reason()
        self.samples: list[dict[str, float]] = []
        self.steps = 0
        self._stop = threading.Event()
        self._thread = None
        self._energy_start_mj = self._energy_end_mj = None

    def on_train_start(self, state) -> None:
        if self.reason:
            return
        import pynvml

        self._handle = pynvml.nvmlDeviceGetHandleByIndex(self.device_index)
        self._energy_start_mj = self._energy()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def phase_ended(self, name: str) -> None:
        if name == "optimizer":
            self.steps += 1

    def on_train_end(self, state) -> None:
        if self._thread:
            self._stop.set()
            self._thread.join()
            self._energy_end_mj = self._energy()

    def _energy(self) -> float | None:
        import pynvml

        try:
            return float(pynvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except pynvml.NVMLError:  # older boards have no energy counter
            return None

    def _sample(self) -> None:
        import pynvml

        while not self._stop.wait(self.interval_s):
            utilisation = pynvml.nvmlDeviceGetUtilizationRates(self._handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(self._handle)
            self.samples.append({"power_w": pynvml.nvmlDeviceGetPowerUsage(self._handle) / 1000.0,
                                 "gpu_util_pct": float(utilisation.gpu), "mem_util_pct": float(utilisation.memory),
                                 "memory_used_mb": memory.used / 2**20})

    def result(self) -> dict:
        if self.reason:
            return {"available": False, "reason": self.reason}
        summary = {key: statistics.fmean(s[key] for s in self.samples) if self.samples else None
                   for key in ("power_w", "gpu_util_pct", "mem_util_pct", "memory_used_mb")}
        energy_j = None
        if self._energy_start_mj is not None and self._energy_end_mj is not None:
            energy_j = (self._energy_end_mj - self._energy_start_mj) / 1000.0
        return {"available": True, "mean": summary, "n_samples": len(self.samples), "energy_j": energy_j,
                "energy_per_step_j": energy_j / self.steps if energy_j is not None and self.steps else None,
                "max_power_w": max((s["power_w"] for s in self.samples), default=None)}
