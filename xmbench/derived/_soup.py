"""Model soups' shared part: checking that the ingredients can be averaged, and averaging them into one model.

An ingredient is the tensors a soup averages: the trainable parameters (adapters, heads,
temperature) with `average = "trainable"`, every floating-point parameter and buffer with
`average = "all"` (members whose adapters were merged into their weights, full fine-tunes). The
soup is a copy of the first input with the averaged tensors loaded: one model, one member's cost.
Imported inside the builders (it imports torch).
"""
from __future__ import annotations

import copy

import torch

from xmbench.errors import ConfigError

SAME_START = ("a soup averages models of one architecture and adapter, fine-tuned from one foundation "
              "(Wortsman et al. 2022)")


def _state(model, technique: str, index: int) -> dict[str, torch.Tensor]:
    if not callable(getattr(model, "state_dict", None)):
        raise ConfigError(f"{technique}: input {index} ({type(model).__name__}) is not a torch module; {SAME_START}")
    return model.state_dict(keep_vars=True)


def soup_names(models: list, technique: str, average: str) -> list[str]:
    """The names of the tensors the soup averages, after checking that the inputs can be souped; else a clear error."""
    if len(models) < 2:
        raise ConfigError(f"{technique}: needs at least two input variants, got {len(models)}")
    states = [_state(m, technique, i) for i, m in enumerate(models)]
    for index, state in enumerate(states):
        opaque = next((n for n, v in state.items() if not isinstance(v, torch.Tensor)), None)
        if opaque is not None:  # e.g. the packed weights of a dynamically quantised Linear
            raise ConfigError(f"{technique}: input {index} holds state that is not a plain tensor ({opaque}: a quantised "
                              f"layer?); a soup averages floating-point weights: soup the variants before quantising")
    first = states[0]
    for index, state in enumerate(states[1:], start=1):
        missing, extra = sorted(first.keys() - state.keys()), sorted(state.keys() - first.keys())
        if missing or extra:
            example = (f"input 0 has {missing[0]}, input {index} has not" if missing
                       else f"input {index} has {extra[0]}, input 0 has not")
            raise ConfigError(f"{technique}: inputs 0 and {index} differ in structure ({len(missing) + len(extra)} "
                              f"tensors: {example}); {SAME_START}")
        for name, tensor in first.items():
            other = state[name]
            if tensor.shape != other.shape or tensor.dtype != other.dtype:
                raise ConfigError(f"{technique}: {name} is {tuple(tensor.shape)} {tensor.dtype} in input 0 and "
                                  f"{tuple(other.shape)} {other.dtype} in input {index}; {SAME_START}")
    trainable = [{n for n, p in m.named_parameters() if p.requires_grad} for m in models]
    for index, names in enumerate(trainable[1:], start=1):
        if names != trainable[0]:
            name = sorted(names ^ trainable[0])[0]
            raise ConfigError(f"{technique}: inputs 0 and {index} train different parameters (e.g. {name}); {SAME_START}")
    if average == "all":
        return [n for n, t in first.items() if t.is_floating_point()]
    chosen = [n for n in first if n in trainable[0]]
    if not chosen:
        raise ConfigError(f"{technique}: the inputs have no trainable parameters to average (were their adapters "
                          f"merged by a transform? then use average = \"all\")")
    for index, state in enumerate(states[1:], start=1):  # what is not averaged must be the same in every input
        for name, tensor in first.items():
            if tensor.requires_grad:  # a trainable one (or an alias of one): averaged
                continue
            if not torch.equal(tensor, state[name]):
                delta = ((tensor.float() - state[name].float()).abs().max().item() if tensor.is_floating_point()
                         else "integer values")
                raise ConfigError(f"{technique}: inputs 0 and {index} were not trained from the same foundation: the "
                                  f"frozen {name} differs (max |Δ| {delta}); {SAME_START}. (Members whose adapters a "
                                  f"transform merged into their weights differ so too: use average = \"all\" for them)")
    return chosen


def ingredient(model, names: list[str]) -> dict[str, torch.Tensor]:
    """A detached copy of the model's tensors that the soup averages."""
    state = model.state_dict()
    return {n: state[n].detach().clone() for n in names}


def average(ingredients: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of the ingredients, in their own dtype (two: exactly (a + b) / 2)."""
    mean = {}
    for name in ingredients[0]:
        total = ingredients[0][name].clone()
        for other in ingredients[1:]:
            total += other[name]
        mean[name] = total / len(ingredients)
    return mean


def vessel(models: list):
    """The model the soup lives in: a copy of the first input (the inputs stay as they are)."""
    return copy.deepcopy(models[0])


@torch.no_grad()
def load(model, tensors: dict[str, torch.Tensor]) -> None:
    """Copy the averaged tensors into the soup's parameters and buffers (trainable flags unchanged)."""
    state = model.state_dict(keep_vars=True)
    for name, value in tensors.items():
        state[name].copy_(value)


def report(model, stats: dict) -> None:
    """Make the soup's recipe visible: `model.soup`, and under "soup" in `adapter_stats()` (the record's profile.adapters)."""
    own = getattr(model, "adapter_stats", None)

    def adapter_stats() -> dict:
        return {**(own() if callable(own) else {}), "soup": stats}

    model.soup = stats
    model.adapter_stats = adapter_stats
