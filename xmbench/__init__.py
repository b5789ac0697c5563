"""xmbench: benchmark and profiling harness for PEFT-tuned cross-modal retrieval models."""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["evaluate_retrieval", "evaluate_scores", "load_records", "load_suite", "run_suite", "__version__"]


def __getattr__(name: str):
    # Lazy: `import xmbench` stays light; torch loads when a function is first used.
    if name in ("evaluate_retrieval", "evaluate_scores"):
        from xmbench.eval import retrieval
        return getattr(retrieval, name)
    if name == "load_records":
        from xmbench.report.frame import load_records
        return load_records
    if name == "load_suite":
        from xmbench.suite import load_suite
        return load_suite
    if name == "run_suite":
        from xmbench.bench.runner import run_suite
        return run_suite
    raise AttributeError(f"module 'xmbench' has no attribute {name!r}")
