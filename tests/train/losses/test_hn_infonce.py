"""Hard-negative InfoNCE (Robinson et al. 2021): negatives reweighted by exp(β·logit); β = 0 is InfoNCE."""
import math

import pytest
import torch
import torch.nn.functional as F

from xmbench.registry import LOSSES
from xmbench.train.step import LossInput

PAIRS3 = [("text", "image"), ("text", "audio"), ("image", "audio")]


def loss(embeddings, ids, scale, pairs=(("text", "image"),), local_rows=None, **options):
    scales = {f"{a}-{b}": torch.tensor(scale) for a, b in pairs}
    return LOSSES.bind(LOSSES.default("hn_infonce", **options))(
        LossInput(embeddings, ids, scales, list(pairs), local_rows=local_rows))


def robinson(rows, query_ids, gallery_ids, scale, beta, tau_plus):
    """Each query's loss, written as the authors' code computes it (their `neg`, `imp`, `reweight_neg`, `Ng`)."""
    losses = []
    for i, (row, qid) in enumerate(zip(rows, query_ids)):
        pos = math.exp(row[i])
        neg = [math.exp(x) for x, gid in zip(row, gallery_ids) if gid != qid]
        n = len(neg)
        imp = [x ** beta for x in neg]  # (beta * neg.log()).exp()
        reweight_neg = sum(a * b for a, b in zip(imp, neg)) / (sum(imp) / n)
        ng = (-tau_plus * n * pos + reweight_neg) / (1 - tau_plus)
        if tau_plus > 0:
            ng = max(ng, n * math.exp(-scale))  # torch.clamp(Ng, min=N * e^(-1/temperature))
        losses.append(-math.log(pos / (pos + ng)))
    return losses


def by_hand(e, ids, scale, beta, tau_plus, a="text", b="image"):
    logits = (scale * e[a] @ e[b].T).tolist()
    columns = [list(c) for c in zip(*logits)]
    forward = robinson(logits, ids[a].tolist(), ids[b].tolist(), scale, beta, tau_plus)
    backward = robinson(columns, ids[b].tolist(), ids[a].tolist(), scale, beta, tau_plus)
    return (sum(forward) / len(forward) + sum(backward) / len(backward)) / 2, [(x + y) / 2 for x, y in zip(forward, backward)]


def test_beta_zero_is_infonce():
    torch.manual_seed(0)
    e = {m: F.normalize(torch.randn(8, 6), dim=-1) for m in ("text", "image", "audio")}
    ids = dict.fromkeys(e, torch.arange(8))
    scales = {f"{a}-{b}": torch.tensor(14.0) for a, b in PAIRS3}
    reference = LOSSES.bind(LOSSES.default("infonce"))(LossInput(e, ids, scales, PAIRS3))
    out = loss(e, ids, 14.0, PAIRS3, beta=0.0)
    for name in reference.parts:
        assert out.parts[name].item() == pytest.approx(reference.parts[name].item(), rel=1e-6)
    assert torch.allclose(out.per_item, reference.per_item, atol=1e-6)


@pytest.mark.parametrize("beta, tau_plus", [(1.0, 0.0), (0.5, 0.0), (2.0, 0.1)])
def test_matches_the_authors_formula(beta, tau_plus):
    torch.manual_seed(1)
    e = {m: F.normalize(torch.randn(5, 4), dim=-1) for m in ("text", "image")}
    ids = dict.fromkeys(e, torch.arange(5))
    out = loss(e, ids, 3.0, beta=beta, tau_plus=tau_plus)
    part, per_item = by_hand(e, ids, 3.0, beta, tau_plus)
    assert out.parts["text-image"].item() == pytest.approx(part, rel=1e-5)
    assert out.per_item.tolist() == pytest.approx(per_item, rel=1e-5)


def test_the_debiased_estimate_is_clamped_at_n_e_to_the_minus_scale():
    # positives at cosine 1, negatives at −1: Ng = (N e^−s − τ⁺ N e^s) / (1 − τ⁺) < 0, so the clamp holds it at N e^−s
    e = {"text": torch.tensor([[1.0, 0.0], [-1.0, 0.0]]), "image": torch.tensor([[1.0, 0.0], [-1.0, 0.0]])}
    e = {m: x.requires_grad_() for m, x in e.items()}
    ids = dict.fromkeys(e, torch.arange(2))
    out = loss(e, ids, 2.0, beta=1.0, tau_plus=0.5)
    expected = -math.log(math.exp(2) / (math.exp(2) + math.exp(-2)))
    assert out.parts["text-image"].item() == pytest.approx(expected, rel=1e-5)
    assert out.parts["text-image"].item() == pytest.approx(by_hand(e, ids, 2.0, 1.0, 0.5)[0], rel=1e-5)
    out.parts["text-image"].backward()
    assert all(torch.isfinite(x.grad).all() for x in e.values())


def test_a_larger_beta_weighs_the_hard_negatives_more():
    torch.manual_seed(2)
    e = {m: F.normalize(torch.randn(4, 3), dim=-1) for m in ("text", "image")}
    ids = dict.fromkeys(e, torch.arange(4))
    values = [loss(e, ids, 5.0, beta=beta).parts["text-image"].item() for beta in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert values == sorted(values) and values[0] < values[-1]  # the tilted mean of e^L grows with the tilt
    # β → ∞ puts the whole negative mass N·e^{L} on each query's hardest negative
    logits = (5.0 * e["text"] @ e["image"].T).tolist()

    def hardest(rows):
        return [-math.log(math.exp(r[i]) / (math.exp(r[i]) + 3 * math.exp(max(x for j, x in enumerate(r) if j != i))))
                for i, r in enumerate(rows)]

    limit = (sum(hardest(logits)) / 4 + sum(hardest([list(c) for c in zip(*logits)])) / 4) / 2
    assert loss(e, ids, 5.0, beta=200.0).parts["text-image"].item() == pytest.approx(limit, rel=1e-3)


def test_rows_of_the_same_item_are_not_negatives_and_local_rows_split_queries():
    torch.manual_seed(3)
    e = {m: F.normalize(torch.randn(4, 3), dim=-1) for m in ("text", "image")}
    ids = dict.fromkeys(e, torch.tensor([0, 0, 1, 2]))  # rows 0 and 1 are one item (two captions, two views)
    out = loss(e, ids, 4.0, beta=1.0)
    assert out.parts["text-image"].item() == pytest.approx(by_hand(e, ids, 4.0, 1.0, 0.0)[0], rel=1e-5)
    halves = [loss(e, ids, 4.0, beta=1.0, local_rows=slice(0, 2)), loss(e, ids, 4.0, beta=1.0, local_rows=slice(2, 4))]
    assert all(h.per_item is None for h in halves)
    assert ((halves[0].parts["text-image"] + halves[1].parts["text-image"]) / 2).item() == pytest.approx(
        out.parts["text-image"].item(), rel=1e-5)
