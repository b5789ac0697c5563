"""Resumable checkpoints of a training run: everything the next step depends on, written atomically.

A checkpoint holds the trainable tensors, the optimizer, the sampler, the run's own generators
(captions, augmentations), the state of callbacks that keep one (`state_dict`/`load_state_dict`),
torch's global generator and the log so far, plus the identity of the run (config id and seed):
a checkpoint of another config is never resumed. It is read with `weights_only=True`, so a
checkpoint folder can be shared without unpickling arbitrary code.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from xmbench.errors import XmbenchError

CHECKPOINT = "checkpoint.pt"


def save(directory: Path, identity: str, step: int, result: dict, named_parameters, optimizer, sampler,
         generators: dict[str, torch.Generator], callbacks=()) -> None:
    """Atomic: a crash mid-write leaves the previous checkpoint intact."""
    directory.mkdir(parents=True, exist_ok=True)
    named_parameters = list(named_parameters)
    names = {id(p): n for n, p in named_parameters}
    state = {"identity": identity, "step": step, "result": result,
             "model": {n: p.detach().clone() for n, p in named_parameters if p.requires_grad},
             # the optimizer's groups by parameter name: unfreezing adds parameters in time order
             "groups": [[g.get("component", ""), float(g.get("lr_scale", 1.0)), [names[id(p)] for p in g["params"]]]
                        for g in optimizer.param_groups],
             "optimizer": optimizer.state_dict(), "sampler": sampler.state_dict(),
             "generators": {name: g.get_state() for name, g in generators.items()}, "torch_rng": torch.get_rng_state(),
             "callbacks": {str(i): c.state_dict() for i, c in enumerate(callbacks) if hasattr(c, "state_dict")}}
    path = directory / CHECKPOINT
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load(directory: Path, identity: str, named_parameters, optimizer, sampler,
         generators: dict[str, torch.Generator], callbacks=()) -> tuple[int, dict] | None:
    """Restore the run from its checkpoint; None when there is none for this identity."""
    path = directory / CHECKPOINT
    if not path.exists():
        return None
    try:
        state = torch.load(path, weights_only=True)
    except Exception as exc:  # noqa: BLE001 — torch raises several kinds for a foreign or unsafe file
        raise XmbenchError(f"{path}: not a checkpoint xmbench can read safely ({type(exc).__name__}); "
                           f"delete it to start the run afresh") from None
    if state.get("identity") != identity:
        return None  # another config's or seed's run: start afresh (it is overwritten at the next save)
    parameters = dict(named_parameters)
    with torch.no_grad():
        for name, value in state["model"].items():
            parameters[name].requires_grad_(True)  # what trained then trains now (unfrozen layers too)
            parameters[name].copy_(value)
    _restore_groups(optimizer, state["groups"], parameters)
    optimizer.load_state_dict(state["optimizer"])
    sampler.load_state_dict(state["sampler"])
    for name, generator in generators.items():
        generator.set_state(state["generators"][name])
    for i, callback in enumerate(callbacks):
        if str(i) in state.get("callbacks", {}) and hasattr(callback, "load_state_dict"):
            callback.load_state_dict(state["callbacks"][str(i)])
    torch.set_rng_state(state["torch_rng"])
    return state["step"], state["result"]


def remove(directory: Path) -> None:
    """A finished run's checkpoint is of no further use."""
    (directory / CHECKPOINT).unlink(missing_ok=True)


def _restore_groups(optimizer, saved: list, parameters: dict) -> None:
    """The optimizer's groups as saved (same parameters, same order), so its state loads onto them."""
    by_component = {g.get("component"): g for g in optimizer.param_groups}
    groups = []
    for component, lr_scale, names in saved:
        group = by_component.get(component) or {**optimizer.defaults, "component": component, "lr_scale": lr_scale}
        group["params"] = [parameters[n] for n in names]
        groups.append(group)
    optimizer.param_groups = groups
