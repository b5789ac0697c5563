"""Triplet loss on cosine similarities: batch-hard and semi-hard mining, per pair, both directions."""
import math

import pytest
import torch

from xmbench.registry import LOSSES
from xmbench.train.step import LossInput


def loss(embeddings, ids, pairs=(("text", "image"),), local_rows=None, **options):
    scales = {f"{a}-{b}": torch.tensor(50.0) for a, b in pairs}  # a triplet loss ignores the logit scale
    inputs = LossInput(embeddings, ids, scales, list(pairs), local_rows=local_rows)
    return LOSSES.bind(LOSSES.default("triplet", **options))(inputs)


def at(*angles, length=1.0):
    return torch.tensor([[length * math.cos(t), length * math.sin(t)] for t in angles])


def by_hand(query_angles, gallery_angles, query_ids, gallery_ids, margin, mining):
    """Each query's ℓ (None: no positive or no negative) from the cosines cos(θ_q − θ_g)."""
    losses = []
    for tq, qid in zip(query_angles, query_ids):
        s = [math.cos(tq - tg) for tg in gallery_angles]
        pos = [x for x, gid in zip(s, gallery_ids) if gid == qid]
        neg = [x for x, gid in zip(s, gallery_ids) if gid != qid]
        if not pos or not neg:
            losses.append(None)
        elif mining == "batch_hard":
            losses.append(max(0.0, margin - min(pos) + max(neg)))
        else:
            terms = []
            for p in pos:
                semi = [n for n in neg if n < p]
                terms.append(max(0.0, margin - p + (max(semi) if semi else min(neg))))
            losses.append(sum(terms) / len(terms))
    return losses


def mean(xs):
    kept = [x for x in xs if x is not None]
    return sum(kept) / len(kept)


@pytest.mark.parametrize("mining", ["batch_hard", "semi_hard"])
@pytest.mark.parametrize("text_ids, image_ids", [([0, 1, 2, 3], [0, 1, 2, 3]), ([0, 0, 1, 3], [0, 1, 2, 3])])
def test_matches_a_hand_computation_both_ways(mining, text_ids, image_ids):
    t, i = [0.0, 1.0, 2.5, -1.2], [0.3, 0.6, 2.0, -0.2]
    # lengths ≠ 1: the loss normalises itself (cosines)
    out = loss({"text": at(*t, length=2.0), "image": at(*i, length=0.5)},
               {"text": torch.tensor(text_ids), "image": torch.tensor(image_ids)}, margin=0.3, mining=mining)
    t2i = by_hand(t, i, text_ids, image_ids, 0.3, mining)
    i2t = by_hand(i, t, image_ids, text_ids, 0.3, mining)
    assert out.parts["text-image"].item() == pytest.approx((mean(t2i) + mean(i2t)) / 2, rel=1e-5)
    expected = [((a or 0.0) + (b or 0.0)) / 2 for a, b in zip(t2i, i2t)]
    assert out.per_item.tolist() == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_batch_hard_takes_the_hardest_negative_semi_hard_one_less_similar_than_the_positive():
    # the query (angle 0) sees its positive at 0.5 rad, one negative closer (0.2 rad) and one at 0.9 rad
    q, g = at(0.0), at(0.5, 0.2, 0.9)
    e = {"text": q, "image": g}
    ids = {"text": torch.tensor([0]), "image": torch.tensor([0, 1, 2])}
    m = 0.5
    hard = loss(e, ids, margin=m, mining="batch_hard", pairs=[("text", "image")])
    semi = loss(e, ids, margin=m, mining="semi_hard", pairs=[("text", "image")])
    p = math.cos(0.5)
    t2i_hard, t2i_semi = m - p + math.cos(0.2), m - p + math.cos(0.9)
    # image → text: every image query has the one text row as positive or nothing: only image 0 counts, no negative
    assert hard.parts["text-image"].item() == pytest.approx(t2i_hard / 2, rel=1e-6)
    assert semi.parts["text-image"].item() == pytest.approx(t2i_semi / 2, rel=1e-6)


def test_semi_hard_falls_back_to_the_least_similar_negative():
    q, g = at(0.0), at(1.0, 0.3, 0.6)  # both negatives are more similar than the positive
    out = loss({"text": q, "image": g}, {"text": torch.tensor([0]), "image": torch.tensor([0, 1, 2])},
               margin=0.1, mining="semi_hard")
    assert out.parts["text-image"].item() == pytest.approx((0.1 - math.cos(1.0) + math.cos(0.6)) / 2, rel=1e-6)


def test_well_separated_items_cost_nothing_and_gradients_are_finite():
    e = {m: at(0.0, 2.0, 4.0).requires_grad_() for m in ("text", "image", "audio")}
    ids = dict.fromkeys(e, torch.arange(3))
    pairs = [("text", "image"), ("text", "audio"), ("image", "audio")]
    for mining in ("batch_hard", "semi_hard"):
        out = loss(e, ids, pairs=pairs, margin=0.2, mining=mining)
        assert set(out.parts) == {"text-image", "text-audio", "image-audio"}
        assert all(v.item() == 0 for v in out.parts.values())
        lonely = loss({"text": e["text"][:1], "image": e["image"][:1]},
                      {"text": torch.tensor([0]), "image": torch.tensor([0])}, mining=mining)  # no negative at all
        lonely.parts["text-image"].backward()
        assert lonely.parts["text-image"].item() == 0 and torch.isfinite(e["text"].grad).all()


def test_local_rows_take_this_ranks_queries():
    t, i = [0.0, 1.0, 2.5, -1.2], [0.3, 0.6, 2.0, -0.2]
    e, ids = {"text": at(*t), "image": at(*i)}, {"text": torch.arange(4), "image": torch.arange(4)}
    whole = loss(e, ids).parts["text-image"]
    halves = [loss(e, ids, local_rows=slice(0, 2)).parts["text-image"], loss(e, ids, local_rows=slice(2, 4)).parts["text-image"]]
    assert ((halves[0] + halves[1]) / 2).item() == pytest.approx(whole.item(), rel=1e-6)
