"""Asking a model what it offers: each optional capability of the protocol, with its default.

Callers outside xmbench/models use these functions instead of reaching into a model, so the
reference model, a user's plain object and a fusion model that scores pairs itself all take
the same paths (see xmbench.models.model for the protocol).
"""
from __future__ import annotations

from collections.abc import Iterator

import torch

DEFAULT_LOGIT_SCALE = 1.0 / 0.07  # CLIP's initial temperature, for models that have none


def named_parameters(model) -> Iterator[tuple[str, torch.nn.Parameter]]:
    """The model's parameters with names; none for a model that is not a torch module."""
    method = getattr(model, "named_parameters", None)
    return iter(method()) if callable(method) else iter(())


def parameters(model) -> list[torch.nn.Parameter]:
    return [p for _, p in named_parameters(model)]


def trainable_parameters(model) -> list[torch.nn.Parameter]:
    """Parameters that train, in the model's order (clipping sums their norms in this order)."""
    return [p for p in parameters(model) if p.requires_grad]


def count_parameters(model, trainable: bool = False) -> int:
    return sum(p.numel() for p in (trainable_parameters(model) if trainable else parameters(model)))


def device_of(model) -> torch.device:
    """Where the model's parameters live (CPU for a model without any)."""
    first = next(named_parameters(model), None)
    return first[1].device if first is not None else torch.device("cpu")


def move(model, device: torch.device):
    """The model on `device` (a model that cannot move stays where it is)."""
    if callable(getattr(model, "to", None)):
        model.to(device)
    return model


def set_training(model, training: bool) -> bool:
    """Switch train/eval mode where the model has one; returns the mode it was in."""
    was = bool(getattr(model, "training", False))
    method = getattr(model, "train", None)
    if callable(method):
        method(training)
    return was


def logit_scales(model, pairs: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
    """{pair name: logit scale}: the model's own (per pair, or one shared), else CLIP's fixed 1/0.07."""
    method = getattr(model, "logit_scales", None)
    if callable(method):
        return method(pairs)
    scale = getattr(model, "logit_scale", None)
    if scale is None:
        scale = torch.tensor(DEFAULT_LOGIT_SCALE, device=device_of(model))
    return {f"{a}-{b}": scale for a, b in pairs}


def after_optimizer_step(model) -> None:
    method = getattr(model, "after_optimizer_step", None)
    if callable(method):
        method()


def can_score(model) -> bool:
    """True when the model scores query–gallery pairs itself (fusion, re-ranking)."""
    return callable(getattr(model, "score", None))


def similarity(model, query_modality: str, queries: torch.Tensor, gallery_modality: str,
               gallery: torch.Tensor) -> torch.Tensor:
    """(n_queries, n_gallery) similarities of encoded rows: the model's `score`, else dot products."""
    if can_score(model):
        return model.score(query_modality, queries, gallery_modality, gallery)
    return queries @ gallery.T


def components(model) -> dict[str, torch.nn.Module]:
    """The model's named parts (tower/<m>, head/<m> for the reference model); {} when it names none."""
    method = getattr(model, "components", None)
    return method() if callable(method) else {}


def component_of(model, parameter_name: str) -> str:
    """The part a parameter belongs to: the model's answer, else the first part of its name."""
    method = getattr(model, "component_of", None)
    return method(parameter_name) if callable(method) else parameter_name.split(".")[0]


def resized(model, modality: str, size: float):
    """A model for inputs of another size (the reference builds a twin); else the model itself."""
    method = getattr(model, "resized", None)
    return method(modality, size) if callable(method) else model
