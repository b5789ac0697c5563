"""One model on several processes (GPUs): torch.distributed and DistributedDataParallel, never by hand.

`xmbench run SUITE --nproc N` launches each run with torchrun; every rank trains on its slice of
the global batch (the sampler draws the same global batch on every rank), its encoders run under
DDP (which averages the gradients), and the contrastive loss sees the global batch: embeddings
are gathered from every rank with autograd (`torch.distributed.nn.functional.all_gather`, whose
backward returns each rank its rows' gradient summed over every rank's loss). So N ranks of batch
B give the loss and gradients of one process with batch N·B. `train.ddp_loss = "local"` scores
only each rank's own rows against the global batch (open_clip's local loss), the same in total.
Rank 0 alone validates, evaluates and writes the record.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from xmbench.models import capabilities


@dataclass(frozen=True)
class Ranks:
    rank: int
    world: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def current() -> Ranks | None:
    """The process group this process belongs to, or None when it runs alone."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None
    return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), dist.get_backend())


def is_main() -> bool:
    ranks = current()
    return ranks is None or ranks.is_main


def init_from_environment() -> Ranks | None:
    """Join the group torchrun describes (RANK, WORLD_SIZE, MASTER_ADDR…): NCCL on GPUs, gloo on CPUs."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", 1)) == 1:
        return None
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    return current()


def gather(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's rows, in rank order, differentiable: each rank's rows get the gradient of every rank's loss."""
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(tensor.contiguous()))


def gather_plain(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's rows, in rank order (no gradient: ids, statistics)."""
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def agree(step_fn) -> None:
    """Rank 0's pairs and pair weights on every rank (callbacks on rank 0 alone may have changed them)."""
    chosen = [(step_fn.pairs, step_fn.pair_weights)]
    dist.broadcast_object_list(chosen, src=0)
    step_fn.pairs, step_fn.pair_weights = chosen[0]


def barrier() -> None:
    dist.barrier()


def mean(value: float) -> float:
    """The mean of a number over the ranks (the logged loss of the local-loss variant)."""
    device = f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cpu"  # NCCL reduces GPU tensors
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / dist.get_world_size()


class EncodeForDDP(nn.Module):
    """The batch's every modality and the logit scales in one forward, so DDP sees every parameter
    that trains used inside its forward (the temperature too) and syncs each once."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inputs: dict[str, dict[str, torch.Tensor]], pairs: list[tuple[str, str]]):
        embeddings = {m: capabilities.encode(self.model, m, x) for m, x in inputs.items()}
        return embeddings, capabilities.logit_scales(self.model, pairs)


def wrap(model, ranks: Ranks) -> nn.Module:
    """DDP around the model's encoders; unused parameters allowed (callbacks may drop a modality)."""
    from torch.nn.parallel import DistributedDataParallel

    if not isinstance(model, nn.Module) or not capabilities.trainable_parameters(model):
        raise ValueError("training on several ranks needs a torch model with parameters that train")
    device_ids = [ranks.local_rank] if ranks.backend == "nccl" else None
    return DistributedDataParallel(EncodeForDDP(model), device_ids=device_ids, find_unused_parameters=True)
