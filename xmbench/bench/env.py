"""The environment a record was measured in: packages, hardware, threads, git state, and provenance.

Provenance is what shaped a record beyond its config: package versions, the source of xmbench,
of a user's model factory and of plugin modules, the data files of an on-disk dataset, and an
injected fault. A record is reused only when its provenance equals the current one (see `reuse_refusal`).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import platform
import subprocess
from pathlib import Path

from xmbench.data.fingerprint import data_fingerprint
from xmbench.plugins import plugin_sources

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


def capture(config=None) -> dict[str, object]:
    """The environment now; with the run's config, its provenance too."""
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
        **({"provenance": provenance(config)} if config is not None else {}),
    }


def measured_peaks() -> dict[str, float]:
    """The matmul peaks (FLOP/s) this process measured for MFU, by device; none unless profiled."""
    from xmbench.profile.flops import MEASURED_PEAKS

    return dict(MEASURED_PEAKS)


@functools.lru_cache(maxsize=1)
def xmbench_source() -> str:
    """A hash of xmbench's own source files: a code change can change every number."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return None


def factory_source(factory: str) -> str | None:
    """A hash of the module file a user model comes from (None for the reference model)."""
    if factory == "reference":
        return None
    try:
        spec = importlib.util.find_spec(factory.partition(":")[0])
    except (ImportError, ValueError):
        return None
    return file_digest(Path(spec.origin)) if spec and spec.origin else None


def provenance(config) -> dict[str, object]:
    """What shaped a run beyond its config (see the module docstring)."""
    return {"packages": package_versions(), "xmbench_source": xmbench_source(),
            "factory_source": factory_source(config.model.factory), "data": data_fingerprint(config.data),
            "fault": os.environ.get("XMBENCH_FAULT") or None,
            # None without plugins, as records made before plugins existed say (absent)
            "plugin_sources": plugin_sources(config.plugins) or None}


def reuse_refusal(record_env: dict, config) -> str | None:
    """Why a complete record of the same config may not be reused now, or None when it may."""
    if os.environ.get("XMBENCH_FAULT"):
        return "XMBENCH_FAULT is set: a fault run is always measured afresh"
    saved = record_env.get("provenance")
    if not saved:
        return "the record predates provenance tracking"
    if saved.get("fault"):
        return f"the record was made with XMBENCH_FAULT={saved['fault']}"
    now = provenance(config)
    labels = {"packages": "package versions", "xmbench_source": "xmbench's code", "factory_source": "the model factory's code",
              "data": "the data files", "plugin_sources": "a plugin module's code"}
    changed = [label for key, label in labels.items() if saved.get(key) != now[key]]
    return f"{', '.join(changed)} changed since the record was made" if changed else None
