"""Embedding MixUp with soft targets on top of symmetric InfoNCE."""
import math

import pytest
import torch
import torch.nn.functional as F

from xmbench.errors import ConfigError
from xmbench.registry import LOSSES
from xmbench.schema import load_choice
from xmbench.train.losses.mixup import draw, soft_targets
from xmbench.train.step import LossInput

PAIRS = [("text", "image"), ("text", "audio"), ("image", "audio")]


def inputs(embeddings, scale=10.0, pairs=PAIRS, step=0, local_rows=None, ids=None):
    ids = ids or {m: torch.arange(len(e)) for m, e in embeddings.items()}
    scales = {f"{a}-{b}": torch.tensor(scale) for a, b in pairs}
    return LossInput(embeddings, ids, scales, list(pairs), step=step, local_rows=local_rows)


def loss(x, **options):
    return LOSSES.bind(LOSSES.default("mixup", **options))(x)


def embeddings(rows=6, width=5, seed=0, modalities=("text", "image", "audio")):
    g = torch.Generator().manual_seed(seed)
    return {m: F.normalize(torch.randn(rows, width, generator=g), dim=-1) for m in modalities}


def test_weight_zero_is_infonce():
    e = embeddings()
    reference = LOSSES.bind(LOSSES.default("infonce"))(inputs(e))
    out = loss(inputs(e), weight=0.0)
    for name in reference.parts:
        assert out.parts[name].item() == pytest.approx(reference.parts[name].item(), rel=1e-6)
    assert torch.allclose(out.per_item, reference.per_item, atol=1e-6)


def test_by_hand_on_two_dimensional_embeddings():
    angles = {"text": (0.0, 1.0, 2.5), "image": (0.3, 1.4, -2.0)}
    e = {m: torch.tensor([[math.cos(t), math.sin(t)] for t in a]) for m, a in angles.items()}
    scale, weight, step = 4.0, 0.6, 7
    lam, partner = draw(3, 0.4, 0, step)
    lam, partner = lam.tolist(), partner.tolist()

    def direction(queries, gallery):
        total = []
        for i in range(3):
            clean_row = [scale * float(queries[i] @ g) for g in gallery]
            clean = -(clean_row[i] - math.log(sum(math.exp(v) for v in clean_row)))
            q = lam[i] * queries[i] + (1 - lam[i]) * queries[partner[i]]
            q = q / q.norm()
            row = [scale * float(q @ g) for g in gallery]
            log_z = math.log(sum(math.exp(v) for v in row))
            mixed = -(lam[i] * (row[i] - log_z) + (1 - lam[i]) * (row[partner[i]] - log_z))
            total.append((1 - weight) * clean + weight * mixed)
        return total

    t2i, i2t = direction(e["text"], e["image"]), direction(e["image"], e["text"])
    out = loss(inputs(e, scale=scale, pairs=[("text", "image")], step=step), weight=weight)
    assert out.parts["text-image"].item() == pytest.approx((sum(t2i) / 3 + sum(i2t) / 3) / 2, rel=1e-5)
    assert out.per_item.tolist() == pytest.approx([(a + b) / 2 for a, b in zip(t2i, i2t)], rel=1e-5)


def test_draws_are_seeded_by_seed_and_step():
    e = embeddings()
    same = [loss(inputs(e, step=3)).parts["text-image"].item() for _ in range(2)]
    assert same[0] == same[1]
    assert loss(inputs(e, step=4)).parts["text-image"].item() != same[0]
    assert loss(inputs(e, step=3), seed=1).parts["text-image"].item() != same[0]
    lam, partner = draw(20000, 0.4, 0, 0)
    assert lam.mean().item() == pytest.approx(0.5, abs=0.01)
    assert lam.var().item() == pytest.approx(1 / (4 * (2 * 0.4 + 1)), abs=0.005)  # Beta(α, α): 1 / (4(2α + 1))
    assert sorted(partner.tolist()) == list(range(20000))


def test_soft_targets_put_lambda_on_the_own_column_and_the_rest_on_the_partner():
    lam, partner = torch.tensor([0.7, 0.2, 0.9], dtype=torch.float64), torch.tensor([1, 1, 0])
    targets = soft_targets(lam, partner, 3)
    expected = torch.tensor([[0.7, 0.3, 0.0], [0.0, 1.0, 0.0], [0.1, 0.0, 0.9]], dtype=torch.float64)
    assert torch.allclose(targets, expected)
    assert torch.allclose(soft_targets(lam, partner, 3, slice(1, 3)), expected[1:])


def test_local_rows_split_the_queries_of_the_global_batch():
    e = embeddings(rows=6)
    whole = loss(inputs(e, step=2)).parts
    halves = [loss(inputs(e, step=2, local_rows=slice(0, 3))), loss(inputs(e, step=2, local_rows=slice(3, 6)))]
    assert all(h.per_item is None for h in halves)
    for name in whole:
        assert ((halves[0].parts[name] + halves[1].parts[name]) / 2).item() == pytest.approx(whole[name].item(), rel=1e-5)


def test_gradients_reach_both_modalities_and_unequal_rows_are_refused():
    e = {m: v.requires_grad_() for m, v in embeddings().items()}
    sum(loss(inputs(e), weight=1.0).parts.values()).backward()
    assert all(v.grad is not None and torch.isfinite(v.grad).all() and v.grad.abs().sum() > 0 for v in e.values())
    uneven = {"text": embeddings(4)["text"], "image": embeddings(6)["image"]}
    with pytest.raises(ValueError, match="they have 4 and 6 rows"):
        loss(inputs(uneven, pairs=[("text", "image")]))
    with pytest.raises(ConfigError, match="alpha: must be positive"):
        load_choice("loss", {"name": "mixup", "alpha": 0.0}, "train.loss")
