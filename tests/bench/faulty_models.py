"""User models that fail the way real runs fail, for the runner and executor tests (named by import path)."""
import os
import signal
import time

import torch


class Sleepy(torch.nn.Module):
    """Hangs in encode: what a run stuck on a lock or a slow disk looks like."""

    modalities = ("text", "image")

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def encode(self, modality, inputs):
        time.sleep(120)


def sleepy(config):
    return Sleepy()


def crashing(config):
    os.kill(os.getpid(), signal.SIGKILL)  # what the out-of-memory killer does
