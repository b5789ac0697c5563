"""FLOPs per tower per sample (torch.utils.flop_counter), achieved FLOP/s and MFU.

MFU is achieved FLOP/s over the machine's matmul peak, which xmbench measures itself
(`matmul_peak_flops`): a published peak says nothing about a 2-core VM. Counts are of the
matrix products and convolutions torch's counter knows (the bulk of a transformer); the
elementwise rest is not counted, as in every MFU figure.
"""
from __future__ import annotations

import functools
import math
import time

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count


def _cpu_attention_flops(query, key, value, *args, out_val=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)  # the counter passes tensor shapes


def _cpu_attention_backward_flops(grad_out, query, key, value, *args, out_val=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


# torch's counter knows the CUDA attention kernels but not the CPU flash kernel that
# scaled_dot_product_attention dispatches to on CPU: without these, every attention score and
# mixing product of a transformer on CPU would count as zero (caught by the hand-count test).
def _dynamic_int8_linear_flops(x_shape, packed, *args, out_shape=None, **kwargs) -> int:
    return 2 * math.prod(x_shape[:-1]) * x_shape[-1] * out_shape[-1]


# int8 layers of a dynamically quantised model do the same multiply-adds: the counter knows them not
CPU_ATTENTION = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention_flops,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_attention_backward_flops,
    torch.ops.quantized.linear_dynamic: _dynamic_int8_linear_flops,
}


def count_flops(fn, *args, **kwargs) -> int:
    """FLOPs of one call of fn (forward, and backward if fn runs one)."""
    with FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION) as counter:
        fn(*args, **kwargs)
    return int(counter.get_total_flops())


MEASURED_PEAKS: dict[str, float] = {}  # device → FLOP/s, read by the environment capture


@functools.lru_cache(maxsize=4)
def matmul_peak_flops(size: int | None = None, dtype: torch.dtype = torch.float32, device: str = "cpu",
                      min_time_s: float = 0.25) -> float:
    """The best FLOP/s of repeated size×size matrix products on this machine (measured once a process).

    1024 on CPU (measured here: best-of reaches a higher rate than 2048, in half the time);
    8192 on a GPU, which a small product cannot fill.
    """
    size = size or (8192 if device == "cuda" else 1024)
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    a @ b
    sync()
    best, started = float("inf"), time.perf_counter()
    while time.perf_counter() - started < min_time_s:
        t0 = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - t0)
    MEASURED_PEAKS[device] = 2 * size**3 / best
    return MEASURED_PEAKS[device]


def tower_flops_per_sample(model, batches: dict[str, dict[str, torch.Tensor]]) -> dict[str, float]:
    """Forward FLOPs of encoding one sample of each modality (tower and head), from a real batch.

    Counted in eval mode, as a query is encoded: in train mode some towers mark their own inputs as
    needing gradients (wav2vec2's feature encoder), which inference mode cannot hold.
    """
    from xmbench.models import capabilities

    result = {}
    was_training = capabilities.set_training(model, False)
    try:
        with torch.inference_mode():
            for modality, inputs in batches.items():
                n = len(next(iter(inputs.values())))
                result[modality] = count_flops(model.encode, modality, inputs) / n
    finally:
        capabilities.set_training(model, was_training)
    return result


def training_step_flops(step) -> int:
    """FLOPs of one training step (forward and backward) as `step()` runs it."""
    return count_flops(step)


def utilisation(step_flops: float, step_seconds: float, peak_flops: float) -> dict[str, float]:
    achieved = step_flops / step_seconds if step_seconds > 0 else 0.0
    return {"train_step_flops": float(step_flops), "achieved_flops_per_s": achieved,
            "peak_flops_per_s": peak_flops, "mfu": achieved / peak_flops if peak_flops else 0.0}
