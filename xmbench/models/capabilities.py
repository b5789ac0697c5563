"""Asking a model what it offers: each optional capability of the protocol, with its default.

Callers outside xmbench/models use these functions instead of reaching into a model, so the
reference model, a user's plain object and a fusion model that scores pairs itself all take
the same paths (see xmbench.models.model for the protocol).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext

import torch

from xmbench.errors import ModelOutputError

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


def grad_scaler(model, device: torch.device):
    """A gradient scaler when the model computes in fp16 (its precision policy says), else None."""
    method = getattr(model, "grad_scaler", None)
    return method(device.type) if callable(method) else None


def reranks(model) -> bool:
    """True when the model re-ranks a first stage's top-k itself (`rerank` and `rerank_k`: fusion models)."""
    return callable(getattr(model, "rerank", None)) and bool(getattr(model, "rerank_k", 0))


def can_score(model) -> bool:
    """True when the model scores query–gallery pairs itself (fusion, re-ranking)."""
    return callable(getattr(model, "score", None))


def has_states(model) -> bool:
    """True when the model's scores read more of each row than its embedding (`encode_states`: fusion
    before projection reads the towers' outputs); such rows are encoded with their states."""
    return callable(getattr(model, "encode_states", None))


def similarity(model, query_modality: str, queries: torch.Tensor, gallery_modality: str,
               gallery: torch.Tensor, states: tuple | None = None) -> torch.Tensor:
    """(n_queries, n_gallery) similarities of encoded rows: the model's `score`, else dot products.
    `states` (the queries' and the gallery's, from `encode_states`) go to a model that reads them."""
    if can_score(model):
        if states is not None:
            return model.score(query_modality, queries, gallery_modality, gallery, states=states)
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


def training_callbacks(model) -> list:
    """Callbacks the model's own techniques need while training (e.g. AdaLoRA's rank allocation)."""
    method = getattr(model, "training_callbacks", None)
    return list(method()) if callable(method) else []


def frozen_feature_cache(model, folder, max_mb: float):
    """A context in which the model's frozen towers read cached features (yields {modality: cache});
    a model without the capability runs as it is (yields {})."""
    method = getattr(model, "frozen_feature_cache", None)
    return method(folder, max_mb) if callable(method) else nullcontext({})


def adapter_stats(model) -> dict:
    """What the model's adapters report of themselves (effective ranks, gates); {} when nothing."""
    method = getattr(model, "adapter_stats", None)
    return method() if callable(method) else {}


def projection_weights(model) -> dict[str, torch.Tensor]:
    """Each modality's projection into the shared space, for regularisers; {} when the model has none to offer."""
    method = getattr(model, "projection_weights", None)
    return method() if callable(method) else {}


def model_bytes(model) -> int | None:
    """Bytes of every tensor the model holds (parameters, buffers, packed quantised weights), each storage once:
    what serving it costs in memory, honest for int8 and bf16 modules that parameter counts miss."""
    state_dict = getattr(model, "state_dict", None)
    if not callable(state_dict):
        return None
    seen, total = set(), 0
    stack = list(state_dict().values())
    while stack:
        value = stack.pop()
        if isinstance(value, (tuple, list)):
            stack.extend(value)
        elif isinstance(value, torch.Tensor):
            try:
                storage = value.untyped_storage()
                key = (storage.data_ptr(), storage.nbytes())
            except (RuntimeError, NotImplementedError):  # a packed quantised tensor: count its own bytes
                key, storage = (id(value), value.numel() * value.element_size()), None
            if key not in seen:
                seen.add(key)
                total += key[1]
        elif callable(getattr(value, "unpack", None)):  # torch's packed linear params: (weight, bias)
            stack.extend(value.unpack())
    return total


def count_nonzero(model, trainable: bool = True) -> int:
    """Non-zero elements of the (trainable) parameters: what a sparse adapter really stores."""
    chosen = trainable_parameters(model) if trainable else parameters(model)
    return sum(int(torch.count_nonzero(p.detach())) for p in chosen)


def resized(model, modality: str, size: float):
    """A model for inputs of another size (the reference builds a twin); else the model itself."""
    method = getattr(model, "resized", None)
    return method(modality, size) if callable(method) else model


def encode(model, modality: str, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """`model.encode`, its output checked: a float tensor with one row per input row, (rows, dim)
    unless the model scores pairs itself. A wrong output fails here, naming the modality."""
    return _checked(model, modality, inputs, model.encode(modality, inputs))


def encode_states(model, modality: str, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(embeddings, states): `model.encode_states` for a model that has states (each checked as `encode`'s
    output is, one row per input row), else (`encode`, None)."""
    if not has_states(model):
        return encode(model, modality, inputs), None
    embeddings, states = model.encode_states(modality, inputs)
    rows = len(next(iter(inputs.values())))
    if not isinstance(states, torch.Tensor) or len(states) != rows:
        raise ModelOutputError(f"model.encode_states({modality!r}, …) returned states of shape "
                               f"{tuple(getattr(states, 'shape', ()))} for {rows} input rows; it must return one per row")
    return _checked(model, modality, inputs, embeddings), states


def embeddings_and_states(encoded: dict[str, tuple]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
    """{modality: (embeddings, states)} from `encode_states` → ({modality: embeddings}, {modality: states} or None
    when the model has none)."""
    states = {m: s for m, (_, s) in encoded.items() if s is not None}
    return {m: e for m, (e, _) in encoded.items()}, states or None


def _checked(model, modality: str, inputs: dict[str, torch.Tensor], out) -> torch.Tensor:
    rows = len(next(iter(inputs.values())))
    call = f"model.encode({modality!r}, …)"
    if not isinstance(out, torch.Tensor):
        raise ModelOutputError(f"{call} returned {type(out).__name__}, not a tensor of embeddings")
    if not out.is_floating_point():
        raise ModelOutputError(f"{call} returned {out.dtype} values; embeddings must be floating point")
    if out.ndim == 0 or len(out) != rows:
        raise ModelOutputError(f"{call} returned shape {tuple(out.shape)} for {rows} input rows; "
                               f"it must return one embedding per row: ({rows}, dim)")
    if out.ndim != 2 and not can_score(model):
        raise ModelOutputError(f"{call} returned shape {tuple(out.shape)}; it must return ({rows}, dim) embeddings "
                               f"(or the model must offer `score` to compare other shapes)")
    return out


def check_same_width(model, embeddings: dict[str, torch.Tensor]) -> None:
    """Embeddings compared by dot products must share their width."""
    widths = {m: e.shape[-1] for m, e in embeddings.items()}
    if len(set(widths.values())) > 1 and not can_score(model):
        listed = ", ".join(f"{m} {w}" for m, w in widths.items())
        raise ModelOutputError(f"model.encode returned embeddings of different widths ({listed}); every modality "
                               f"must map into the same shared space")


def check_finite(modality: str, embeddings: torch.Tensor, first_row: int = 0) -> None:
    """Non-finite embeddings fail naming the modality and the first bad row."""
    bad = ~torch.isfinite(embeddings.reshape(len(embeddings), -1)).all(dim=1)
    if bad.any():
        row = first_row + int(bad.nonzero()[0])
        raise ModelOutputError(f"model.encode({modality!r}, …) returned NaN or infinite values "
                               f"({int(bad.sum())} rows, first: row {row})")
