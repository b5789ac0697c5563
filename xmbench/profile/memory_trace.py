"""Memory tracer: peak memory per training phase, and a breakdown per component.

Per phase (data, forward, backward, optimizer; evaluation is measured around the evaluator):
on GPU the allocator's peak (torch.cuda.max_memory_allocated, reset at each phase start);
on CPU the process RSS, sampled by a thread every few milliseconds, as the peak and as the
growth above the RSS at the phase's start (glibc keeps freed memory, so RSS only shows what a
phase adds beyond earlier high-water marks — the growth is the honest CPU figure).

Breakdown per component (tower/<m>, head/<m>, temperature), in bytes, measured not estimated:
frozen weights (parameters without grad), trainable weights (the adapters under PEFT),
gradients (after backward), optimizer state (every tensor in the optimizer's state), and
activations: the tensors autograd saved for backward during the component's forward,
counted once per storage (saved_tensors_hooks; module hooks tell which component runs).
"""
from __future__ import annotations

import threading

import torch

from xmbench.models import capabilities
from xmbench.profile.memory import rss_bytes
from xmbench.train.hooks import Callback

MIB = 2**20


class MemoryProbe(Callback):
    """The module docstring's tracer, attached to the engine as a callback.

    The RSS sampler wakes every 20 ms: on a 2-core machine each wake-up of an extra thread can
    stall torch's two busy worker threads, and 5 ms sampling measurably slowed the step.
    """

    def __init__(self, sample_interval_s: float = 0.02, snapshot: bool = False):
        self.interval_s = sample_interval_s
        self.cuda = False
        self.snapshot = snapshot
        self.phase: str | None = None
        self.phase_start: dict[str, int] = {}
        self.peaks: dict[str, dict[str, float]] = {}
        self.breakdown: dict[str, dict[str, int]] = {}
        self._seen_storages: set = set()
        self._owner = "loss"
        self._hooks: list = []
        self._saved = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._peak_rss = 0
        self.model = self.optimizer = None
        self._weight_storages: set[int] = set()

    # -- engine hooks --------------------------------------------------------------------
    def on_train_start(self, state) -> None:
        model = self.model = state.model
        self.optimizer = state.optimizer
        self.cuda = any(p.is_cuda for p in capabilities.parameters(model))
        if self.cuda and self.snapshot:
            torch.cuda.memory._record_memory_history(max_entries=100_000)
        self._weight_storages = {p.untyped_storage().data_ptr() for p in capabilities.parameters(model)}
        buffers = getattr(model, "buffers", None)
        self._weight_storages |= {b.untyped_storage().data_ptr() for b in (buffers() if callable(buffers) else ())}
        for name, parameter in capabilities.named_parameters(model):
            entry = self._entry(capabilities.component_of(model, name))
            entry["trainable_weights" if parameter.requires_grad else "frozen_weights"] += _nbytes(parameter)
        for name, module in capabilities.components(model).items():
            self._hooks.append(module.register_forward_pre_hook(lambda *_, n=name: self._set_owner(n)))
            self._hooks.append(module.register_forward_hook(lambda *_: self._set_owner("loss")))
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def on_train_end(self, state) -> None:
        if self._saved is not None:  # training stopped inside a forward (a NaN loss, an error)
            self._saved.__exit__(None, None, None)
            self._saved = None
        self._stop.set()
        if self._thread:
            self._thread.join()
        for hook in self._hooks:
            hook.remove()
        self._hooks = []

    def phase_started(self, name: str) -> None:
        self.phase = name
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
            self.phase_start[name] = torch.cuda.memory_allocated()
        else:
            self.phase_start[name] = self._peak_rss = rss_bytes()
        if name == "forward":
            self._seen_storages = set()
            for entry in self.breakdown.values():
                entry["activations"] = 0
            self._saved = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
            self._saved.__enter__()

    def phase_ended(self, name: str) -> None:
        if name == "forward" and self._saved is not None:
            self._saved.__exit__(None, None, None)
            self._saved = None
        if self.cuda:
            peak = torch.cuda.max_memory_allocated()
        else:
            peak = max(self._peak_rss, rss_bytes())
        previous = self.peaks.get(name, {"peak_mb": 0.0, "growth_mb": 0.0})
        self.peaks[name] = {"peak_mb": max(previous["peak_mb"], peak / MIB),
                            "growth_mb": max(previous["growth_mb"], (peak - self.phase_start[name]) / MIB)}
        if name == "optimizer":
            self._count_optimizer_state()
        self.phase = None

    def after_backward(self, state) -> None:
        for entry in self.breakdown.values():
            entry["gradients"] = 0
        for name, parameter in capabilities.named_parameters(state.model):
            if parameter.grad is not None:
                self._entry(capabilities.component_of(state.model, name))["gradients"] += _nbytes(parameter.grad)

    # -- measurement ---------------------------------------------------------------------
    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            if self.phase is not None:
                self._peak_rss = max(self._peak_rss, rss_bytes())

    def _set_owner(self, name: str) -> None:
        self._owner = name

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        key = (storage.data_ptr(), storage.nbytes())
        if key not in self._seen_storages and key[0] not in self._weight_storages:  # weights are not activations
            self._seen_storages.add(key)
            self._entry(self._owner)["activations"] += storage.nbytes()
        return tensor

    def _count_optimizer_state(self) -> None:
        owners = {id(p): capabilities.component_of(self.model, n) for n, p in capabilities.named_parameters(self.model)}
        for entry in self.breakdown.values():
            entry["optimizer_state"] = 0
        for parameter, state in self.optimizer.state.items():
            owner = owners.get(id(parameter), "loss")
            self._entry(owner)["optimizer_state"] += sum(_nbytes(v) for v in state.values() if torch.is_tensor(v))

    def _entry(self, component: str) -> dict[str, int]:
        return self.breakdown.setdefault(component, {"frozen_weights": 0, "trainable_weights": 0, "gradients": 0,
                                                     "optimizer_state": 0, "activations": 0})

    def result(self) -> dict:
        return {"device": "cuda" if self.cuda else "cpu", "per_phase": self.peaks, "breakdown_bytes": self.breakdown,
                "rss_sample_interval_s": None if self.cuda else self.interval_s}

    def dump_snapshot(self, path) -> str | None:
        """The CUDA allocator history as a pickle for https://pytorch.org/memory_viz (GPU only)."""
        if not (self.cuda and self.snapshot):
            return None
        torch.cuda.memory._dump_snapshot(str(path))
        torch.cuda.memory._record_memory_history(enabled=None)
        return str(path)


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()
