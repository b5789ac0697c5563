"""The environment a record was measured in: packages, hardware, threads, git state."""
from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess

PACKAGES = ("xmbench", "torch", "torchvision", "torchaudio", "transformers", "peft", "numpy", "safetensors")


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_state() -> dict[str, object]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": dirty if commit else None}


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cuda_available() -> bool:
    """torch.cuda.is_available(), without importing torch where no NVIDIA device node exists
    (reports and gates then start in a fraction of a second)."""
    if not any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg")):
        return False
    import torch

    return torch.cuda.is_available()


def capture() -> dict[str, object]:
    import torch

    gpu = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        gpu = {"name": props.name, "memory_gb": round(props.total_memory / 2**30, 1), "cuda": torch.version.cuda}
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "packages": package_versions(),
        "git": git_state(),
        "fault": os.environ.get("XMBENCH_FAULT") or None,
        "matmul_peak_flops_per_s": measured_peaks(),
    }


def measured_peaks() -> dict[str, float]:
    """The matmul peaks (FLOP/s) this process measured for MFU, by device; none unless profiled."""
    from xmbench.profile.flops import MEASURED_PEAKS

    return dict(MEASURED_PEAKS)
