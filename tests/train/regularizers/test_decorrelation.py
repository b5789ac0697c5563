"""Decorrelation: weight · Σ_m (Σ_{i≠j} C_ij²) / d, C the batch's covariance (or correlation) matrix per modality."""
import pytest
import torch

from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.errors import ConfigError
from xmbench.models.reference import build_reference
from xmbench.registry import REGULARIZERS
from xmbench.train.engine import make_batch
from xmbench.train.regularizers.decorrelation import off_diagonal_penalty
from xmbench.train.step import LossInput, TrainingStep

# rows [1, 0], [0, 1], [1, 1]: mean [2/3, 2/3]; C = ZᵀZ / (n - 1) = [[1/3, -1/6], [-1/6, 1/3]]
KNOWN = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
UNCORRELATED = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])


def penalty(embeddings, **options):
    inputs = LossInput(embeddings, {}, {}, [])
    return REGULARIZERS.bind(REGULARIZERS.default("decorrelation", **options))(inputs)


def test_known_embeddings():
    assert off_diagonal_penalty(KNOWN).item() == pytest.approx(2 * (1 / 6) ** 2 / 2)  # 1/36
    # correlation: -1/6 / (1/3) = -1/2 → 2 · 1/4 / 2
    assert off_diagonal_penalty(KNOWN, "correlation").item() == pytest.approx(0.25, rel=1e-6)
    assert off_diagonal_penalty(UNCORRELATED).item() == 0.0
    assert off_diagonal_penalty(KNOWN[:1]).item() == 0.0  # one row: no covariance


def test_correlation_is_scale_free_and_covariance_is_not():
    scaled = KNOWN * torch.tensor([10.0, 0.5]) + 3.0
    assert off_diagonal_penalty(scaled, "correlation").item() == pytest.approx(0.25, rel=1e-6)
    assert off_diagonal_penalty(scaled).item() == pytest.approx(2 * (10 * 0.5 / 6) ** 2 / 2)
    constant = torch.tensor([[1.0, 2.0], [1.0, 3.0]])  # a constant dimension correlates with nothing
    assert off_diagonal_penalty(constant, "correlation").item() == 0.0


def test_weight_and_sum_over_modalities():
    both = {"text": KNOWN, "image": KNOWN * 2}
    assert penalty(both, weight=3.0).item() == pytest.approx(3.0 * (1 / 36 + 16 / 36))  # C scales by 2² = 4, C_ij² by 16
    assert penalty(both, weight=3.0, matrix="correlation").item() == pytest.approx(3.0 * 0.5, rel=1e-6)
    assert penalty({"text": KNOWN}).item() == pytest.approx(1 / 36)  # the default weight, 1


def test_gradient_flows_to_the_embeddings():
    e = KNOWN.clone().requires_grad_(True)
    penalty({"text": e}).backward()
    # ∂/∂Z of Σ_{i≠j} C_ij² / d with C = ZᵀZ / (n-1): 2 · 2 Z C_off / ((n-1) d); the centring's Jacobian keeps it
    z = KNOWN - KNOWN.mean(0)
    c_off = torch.tensor([[0.0, -1 / 6], [-1 / 6, 0.0]])
    assert torch.allclose(e.grad, 4 * z @ c_off / (2 * 2))


def test_in_the_objective_it_sees_the_modalities_of_the_steps_pairs(tiny_base):
    config = resolve(tiny_base, {"train.regularizers": [{"name": "decorrelation", "weight": 2.0, "matrix": "correlation"}]})
    split = load_split(config.data, "train")
    torch.manual_seed(0)
    model = build_reference(config, split.modalities)
    batch = make_batch(split, torch.arange(6), ["text", "image", "audio"], torch.Generator().manual_seed(0))
    out = TrainingStep(model, config.train, [("text", "image")])(batch)
    assert set(out.embeddings) == {"text", "image"}
    expected = 2.0 * sum(off_diagonal_penalty(e.detach(), "correlation").item() for e in out.embeddings.values())
    assert out.parts["reg/decorrelation"].item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ConfigError, match=r"train\.regularizers\[0\]\.matrix: 'cov' is not one of"):
        resolve(tiny_base, {"train.regularizers": [{"name": "decorrelation", "matrix": "cov"}]})
