"""Supervised contrastive loss across modalities: every row of the same item is a positive, both directions."""
import math

import pytest
import torch
import torch.nn.functional as F

from xmbench.errors import ConfigError
from xmbench.registry import LOSSES
from xmbench.schema import load_choice
from xmbench.train.step import LossInput


def loss(embeddings, ids, scale=10.0, pairs=(("text", "image"),), local_rows=None, **options):
    scales = {f"{a}-{b}": torch.tensor(scale) for a, b in pairs}
    inputs = LossInput(embeddings, ids, scales, list(pairs), local_rows=local_rows)
    return LOSSES.bind(LOSSES.default("supcon", **options))(inputs)


def unit(*angles):
    return torch.tensor([[math.cos(t), math.sin(t)] for t in angles])


def log_softmax(row):
    top = math.log(sum(math.exp(x) for x in row))
    return [x - top for x in row]


def test_every_row_of_an_item_is_a_positive_both_ways_by_hand():
    # two captions of item 0 and one of item 1; images of items 0, 1, 2 (item 2 has no caption)
    text, image = unit(0.0, 0.5, 2.0), unit(0.2, 1.8, -2.5)
    text_ids, image_ids = [0, 0, 1], [0, 1, 2]
    scale = 4.0
    logits = [[scale * float(t @ i) for i in image] for t in text]
    out = loss({"text": text, "image": image}, {"text": torch.tensor(text_ids), "image": torch.tensor(image_ids)},
               scale=scale)
    out_in = loss({"text": text, "image": image}, {"text": torch.tensor(text_ids), "image": torch.tensor(image_ids)},
                  scale=scale, variant="in")

    def direction(rows, query_ids, gallery_ids, variant):
        losses = []
        for row, qid in zip(rows, query_ids):
            lp = log_softmax(row)
            pos = [lp[j] for j, gid in enumerate(gallery_ids) if gid == qid]
            if not pos:
                losses.append(None)  # no positive: left out of the mean
            elif variant == "out":
                losses.append(-sum(pos) / len(pos))
            else:
                losses.append(-math.log(sum(math.exp(p) for p in pos) / len(pos)))
        return losses

    columns = [list(c) for c in zip(*logits)]
    for variant, result in (("out", out), ("in", out_in)):
        t2i = direction(logits, text_ids, image_ids, variant)
        i2t = direction(columns, image_ids, text_ids, variant)
        assert i2t[2] is None and i2t[0] is not None  # image 0 has two positive captions, image 2 none
        mean = lambda xs: sum(x for x in xs if x is not None) / sum(x is not None for x in xs)  # noqa: E731
        assert result.parts["text-image"].item() == pytest.approx((mean(t2i) + mean(i2t)) / 2, rel=1e-5)
        per_item = [(t + (i or 0.0)) / 2 for t, i in zip(t2i, i2t)]  # a query without a positive counts 0
        assert result.per_item.tolist() == pytest.approx(per_item, rel=1e-5)
    # the two variants differ only where a query has several positives (image 0)
    assert out.parts["text-image"].item() != pytest.approx(out_in.parts["text-image"].item(), rel=1e-4)


def test_with_one_row_per_item_it_is_symmetric_infonce():
    torch.manual_seed(0)
    e = {m: F.normalize(torch.randn(6, 5), dim=-1) for m in ("text", "image", "audio")}
    ids = dict.fromkeys(e, torch.arange(6))
    pairs = [("text", "image"), ("text", "audio"), ("image", "audio")]
    scales = {f"{a}-{b}": torch.tensor(7.0) for a, b in pairs}
    reference = LOSSES.bind(LOSSES.default("infonce"))(LossInput(e, ids, scales, pairs))
    for variant in ("out", "in"):
        out = loss(e, ids, scale=7.0, pairs=pairs, variant=variant)
        assert set(out.parts) == set(reference.parts)
        for name in out.parts:
            assert out.parts[name].item() == pytest.approx(reference.parts[name].item(), rel=1e-5)
        assert torch.allclose(out.per_item, reference.per_item, atol=1e-5)


def test_a_fixed_temperature_replaces_the_pair_scale():
    torch.manual_seed(1)
    e = {m: F.normalize(torch.randn(4, 3), dim=-1) for m in ("text", "image")}
    ids = {"text": torch.tensor([0, 0, 1, 2]), "image": torch.tensor([0, 1, 2, 3])}
    fixed = loss(e, ids, scale=3.0, temperature=0.1).parts["text-image"]
    assert fixed.item() == pytest.approx(loss(e, ids, scale=10.0).parts["text-image"].item(), rel=1e-6)
    with pytest.raises(ConfigError, match="temperature: must be positive"):
        load_choice("loss", {"name": "supcon", "temperature": 0.0}, "train.loss")


def test_gradients_stay_finite_when_a_query_has_no_positive():
    e = {m: F.normalize(torch.randn(3, 4), dim=-1).requires_grad_() for m in ("text", "image")}
    ids = {"text": torch.tensor([0, 1, 5]), "image": torch.tensor([0, 1, 2])}  # text 2 and image 2 unmatched
    for variant in ("out", "in"):
        out = loss(e, ids, variant=variant)
        out.parts["text-image"].backward()
        assert all(torch.isfinite(x.grad).all() for x in e.values())


def test_local_rows_split_the_queries_of_the_global_batch():
    """Two ranks with the local loss: the mean of their parts is the global part (equal halves, every row a positive)."""
    torch.manual_seed(2)
    e = {m: F.normalize(torch.randn(6, 4), dim=-1) for m in ("text", "image")}
    ids = {"text": torch.tensor([0, 0, 1, 2, 2, 3]), "image": torch.tensor([0, 1, 2, 3, 0, 2])}
    whole = loss(e, ids).parts["text-image"]
    halves = [loss(e, ids, local_rows=slice(0, 3)), loss(e, ids, local_rows=slice(3, 6))]
    assert all(h.per_item is None for h in halves)
    assert ((halves[0].parts["text-image"] + halves[1].parts["text-image"]) / 2).item() == pytest.approx(
        whole.item(), rel=1e-5)
