"""Shared fixtures: tiny configs so the whole default test run stays in minutes on 2 cores."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Suite files under tests/ are fixtures of the tests, not suites for the xmbench plugin to run.
collect_ignore_glob = ["*.toml"]


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Data and foundation caches of the test session stay out of the user's ~/.cache."""
    previous = os.environ.get("XMBENCH_CACHE")
    os.environ["XMBENCH_CACHE"] = str(tmp_path_factory.mktemp("xmbench-cache"))
    yield
    if previous is None:
        os.environ.pop("XMBENCH_CACHE", None)
    else:
        os.environ["XMBENCH_CACHE"] = previous

TINY_BASE = {
    "data": {"n_train": 48, "n_val": 16, "n_test": 24, "image_size": 32, "audio_seconds": 0.5, "n_mels": 32},
    "model": {"embed_dim": 16, "text": {"size": "tiny"}, "image": {"size": "tiny"}, "audio": {"size": "tiny"}},
    "train": {"steps": 6, "batch_size": 8, "lr": 3e-3, "warmup_steps": 2, "eval_every": 3},
    "foundation": {"enabled": False},
}


def user_model(factory: str) -> dict:
    """Overrides making a TINY_BASE variant a user's factory model: the factory, and TINY_BASE's settings of the
    reference model back at their defaults (a factory model takes none of them; xmbench.models.applicability)."""
    return {"model.factory": factory, "model.embed_dim": 512, "model.*.size": "small"}


def _cuda() -> bool:
    from xmbench.bench.env import cuda_available

    return cuda_available()


DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not _cuda(), reason="needs CUDA")])]


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """Each device this machine has: the CUDA case of a test runs where a GPU is present."""
    return request.param


@pytest.fixture
def tiny_base() -> dict:
    import copy

    return copy.deepcopy(TINY_BASE)


@pytest.fixture
def tiny_config(tiny_base):
    from xmbench.config import resolve

    return resolve(tiny_base)


@pytest.fixture
def one_thread():
    """One intra-op thread, for modules that mark themselves with it (`pytestmark = pytest.mark.usefixtures(
    "one_thread")`): on two cores shared with other jobs, two threads stall each other (same results)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
