"""Shape scaling: encoder latency against text length, image resolution and audio duration.

Text lengths are measured on the model's own text encoder (token inputs of each length). Image
resolution and audio duration change the number of patches, which a ViT or AST with fixed
position embeddings cannot take as they are, so for the reference model each size is measured
on a twin tower of the same architecture, adapter and head built for that input size (latency
does not depend on the weights' values). A user model is asked to encode inputs of each size
itself; a size it refuses is recorded with the error, not fatal.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from xmbench.models import capabilities
from xmbench.profile.latency import time_callable


def fit_line(xs: list[float], ys: list[float]) -> dict[str, float]:
    """Least-squares y = slope·x + intercept, with R²."""
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((residual ** 2).sum()) / total if total > 0 else 1.0
    return {"slope": float(slope), "intercept": float(intercept), "r2": r2}


def text_inputs(length: int, batch_size: int) -> dict[str, torch.Tensor]:
    """Token inputs of exactly `length` tokens ([CLS] … [SEP] around arbitrary word pieces)."""
    ids = torch.full((batch_size, length), 2000, dtype=torch.long)
    ids[:, 0], ids[:, -1] = 101, 102
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def image_inputs(size: int, batch_size: int) -> dict[str, torch.Tensor]:
    return {"pixel_values": torch.randn(batch_size, 3, size, size)}


def audio_inputs(seconds: float, batch_size: int, data_config) -> dict[str, torch.Tensor]:
    from xmbench.data.preprocess import mel_frames

    frames = mel_frames(dataclasses.replace(data_config, audio_seconds=seconds))
    return {"input_values": torch.randn(batch_size, frames, data_config.n_mels)}


def probe_shape_scaling(model, config, batch_size: int = 8, min_count: int = 5, min_time_s: float = 0.2) -> dict:
    """{axis: {"x": [...], "unit": ..., "p50_s": [...], "fit": {slope, intercept, r2}, "errors": {...}}}."""
    cfg = config.profile
    axes = {
        "text": ("tokens", cfg.text_lengths, lambda n: text_inputs(int(n), batch_size)),
        "image": ("pixels", cfg.image_sizes, lambda n: image_inputs(int(n), batch_size)),
        "audio": ("seconds", cfg.audio_seconds, lambda s: audio_inputs(float(s), batch_size, config.data)),
    }
    results = {}
    for modality, (unit, sizes, make_inputs) in axes.items():
        if modality not in getattr(model, "modalities", ()):
            continue
        xs, p50s, errors = [], [], {}
        for size in sizes:
            sized = capabilities.resized(model, modality, size)
            inputs = make_inputs(size)
            try:
                run = torch.inference_mode()(lambda s=sized, m=modality, x=inputs: s.encode(m, x))
                p50 = time_callable(run, warmup=1, min_count=min_count, min_time_s=min_time_s).percentile(50)
            except Exception as exc:  # noqa: BLE001 — a size the model refuses is a finding, not a crash
                errors[str(size)] = f"{type(exc).__name__}: {exc}"[:300]
                continue
            # image latency grows with the pixel count (patches), so that is the fitted x
            xs.append(float(size) ** 2 if modality == "image" else float(size))
            p50s.append(p50)
        entry = {"sizes": list(sizes), "x": xs, "x_unit": unit, "p50_s": p50s, "batch_size": batch_size, "errors": errors}
        if len(xs) >= 2:
            entry["fit"] = fit_line(xs, p50s)
        results[modality] = entry
    return results
