"""Soft orthogonality: weight · Σ_m ‖G_m − I‖²_F, G the Gram matrix of the projection weight's smaller side."""
import dataclasses

import pytest
import torch

from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.models.reference import build_reference
from xmbench.registry import REGULARIZERS
from xmbench.train.engine import make_batch
from xmbench.train.regularizers.orthogonality import gram_penalty
from xmbench.train.step import LossInput, TrainingStep

TALL = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])  # embed 3 × in 2: WᵀW = diag(1, 4)
WIDE = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]])  # embed 2 × in 3: WWᵀ = [[2, 1], [1, 1]]


class Heads:
    def __init__(self, **weights):
        self.weights = weights

    def projection_weights(self):
        return self.weights


def penalty(model, **options):
    inputs = LossInput({"text": torch.zeros(2, 3)}, {}, {}, [], model)
    return REGULARIZERS.bind(REGULARIZERS.default("orthogonality", **options))(inputs)


def test_known_matrices():
    assert gram_penalty(TALL).item() == 9.0  # (1-1)² + (4-1)²
    assert gram_penalty(WIDE).item() == 3.0  # (2-1)² + 1² + 1² + (1-1)²
    c, s = 0.6, 0.8
    assert gram_penalty(torch.tensor([[c, -s], [s, c]])).item() == pytest.approx(0.0, abs=1e-6)  # a rotation
    # orthonormal columns (tall) or rows (wide) cost nothing: the achievable isometries
    assert gram_penalty(torch.eye(3)[:, :2]).item() == 0.0 and gram_penalty(torch.eye(3)[:2]).item() == 0.0


def test_the_gram_of_the_smaller_side_is_used():
    # a wide W's WᵀW (3 × 3) has rank 2 and could never be I; WWᵀ is what is penalised
    wide = torch.eye(3)[:2]
    assert gram_penalty(wide).item() == 0.0 and (wide.T @ wide - torch.eye(3)).pow(2).sum().item() == 1.0
    assert gram_penalty(TALL).item() == gram_penalty(TALL.T).item()  # a matrix and its transpose: the same Gram


def test_weight_sum_over_modalities_and_normalize():
    model = Heads(text=TALL, image=WIDE)
    assert penalty(model, weight=0.5).item() == pytest.approx(0.5 * (9 + 3))
    assert penalty(model, weight=0.5, normalize=True).item() == pytest.approx(0.5 * (9 / 2 + 3 / 2))
    assert penalty(model).item() == pytest.approx(1e-3 * 12)  # the default weight
    assert penalty(object()).item() == 0.0  # a model with no projections to offer


def test_gradient_is_the_hand_derivative():
    w = TALL.clone().requires_grad_(True)
    penalty(Heads(text=w), weight=2.0).backward()
    # d/dW ‖WᵀW − I‖²_F = 4 W (WᵀW − I)
    assert torch.allclose(w.grad, 2.0 * 4 * TALL @ (TALL.T @ TALL - torch.eye(2)))


def test_in_the_objective_it_reads_each_heads_projection(tiny_base):
    config = resolve(tiny_base, {"train.regularizers": [{"name": "orthogonality", "weight": 0.5}],
                                 "model.image.head": {"name": "mlp", "hidden": 8}})
    split = load_split(config.data, "train")
    torch.manual_seed(0)
    model = build_reference(config, split.modalities)
    pairs = [("text", "image"), ("text", "audio"), ("image", "audio")]
    batch = make_batch(split, torch.arange(6), ["text", "image", "audio"], torch.Generator().manual_seed(0))
    out = TrainingStep(model, config.train, pairs)(batch)
    heads = {"text": model.heads["text"].weight, "image": model.heads["image"][2].weight, "audio": model.heads["audio"].weight}
    expected = 0.5 * sum(gram_penalty(w).item() for w in heads.values())
    assert out.parts["reg/orthogonality"].item() == pytest.approx(expected, rel=1e-5)
    plain = TrainingStep(model, dataclasses.replace(config.train, regularizers=[]), pairs).objective(
        out.embeddings, batch.item_ids)
    assert out.total.item() == pytest.approx(plain.total.item() + expected, rel=1e-5)
