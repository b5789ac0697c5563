"""Fixtures of the fusion tests: each test module names its technique in a module-level FUSION table."""
import pytest

from tests.models.fusion._helpers import MODALITIES, fused_config
from xmbench.models.model import build_model


@pytest.fixture
def config(tiny_base, request):
    return fused_config(tiny_base, request.module.FUSION)


@pytest.fixture
def fused(config):
    """The fused model of the module's FUSION, seed 0, in eval mode (training switches it itself)."""
    model, _ = build_model(config, MODALITIES, seed=0, progress=False)
    return model.eval()
