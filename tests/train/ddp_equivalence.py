"""Run under torchrun by tests/train/test_distributed.py: one training step's loss and gradients on this rank.

Usage: torchrun --nproc_per_node N tests/train/ddp_equivalence.py OUT.pt BATCH LOSS_KIND
With N = 1 and no torchrun it runs as a single process.
"""
import sys

import torch

from tests.conftest import TINY_BASE
from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.models.reference import build_reference
from xmbench.train import distributed
from xmbench.train.engine import train
from xmbench.train.hooks import Callback


class Capture(Callback):
    def __init__(self):
        self.grads = None

    def after_backward(self, state):
        if self.grads is None:  # the first step's gradients, after DDP averaged them
            self.grads = {n: p.grad.detach().clone() for n, p in state.model.named_parameters() if p.grad is not None}


def main(out: str, batch: int, loss_kind: str) -> None:
    ranks = distributed.init_from_environment()
    config = resolve(TINY_BASE, {"train.batch_size": batch, "train.ddp_loss": loss_kind, "train.steps": 2,
                                 "train.eval_every": 0, "train.warmup_steps": 1})
    split = load_split(config.data, "train")
    torch.manual_seed(0)
    model = build_reference(config, split.modalities)
    capture = Capture()
    result = train(model, split, config.train, seed=0, pairs=config.train.modality_pairs(), progress=False,
                   callbacks=[capture])
    if ranks is None or ranks.is_main:
        torch.save({"losses": [s.loss for s in result.steps], "grads": capture.grads,
                    "samples": [round(s.samples_per_s * s.seconds) for s in result.steps]}, out)
    if ranks:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
