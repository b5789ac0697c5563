import math

import pytest
import torch

from xmbench.eval.analysis import alignment, analyse_alignment, modality_gap, uniformity


def test_alignment_gap_and_uniformity_by_hand():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    assert alignment(x, y) == pytest.approx((2.0 + 0.0) / 2)  # |(1,-1)|² = 2, then 0
    assert modality_gap(x, y) == pytest.approx(math.hypot(0.5, 0.5))
    assert uniformity(x) == pytest.approx(-2 * 2.0)  # one pair at squared distance 2: log exp(-2·2)
    assert uniformity(torch.ones(3, 2)) == pytest.approx(0.0)  # collapsed: the worst (highest) value


def test_analysis_pairs_captions_with_their_items_and_ranks_pairs():
    emb = {"text": torch.eye(3)[[0, 0, 1, 1, 2, 2]], "image": torch.eye(3), "audio": torch.eye(3)[[1, 2, 0]]}
    items = {"text": torch.tensor([0, 0, 1, 1, 2, 2]), "image": torch.arange(3), "audio": torch.arange(3)}
    metrics = {"t2i": {"R@1": 1.0}, "i2t": {"R@1": 1.0}, "t2a": {"R@1": 0.2}, "a2t": {"R@1": 0.4},
               "i2a": {"R@1": 0.6}, "a2i": {"R@1": 0.7}, "rsum": 0.0}
    result = analyse_alignment(emb, items, metrics)
    assert result["pairs"]["text-image"]["alignment"] == pytest.approx(0.0)
    assert result["pairs"]["text-audio"]["alignment"] == pytest.approx(2.0)
    assert result["r1_matrix"]["audio"]["text"] == 0.4 and result["r1_matrix"]["text"]["text"] is None
    ranked = result["ranked_pairs"]
    assert [r["pair"] for r in ranked] == ["text-audio", "image-audio", "text-image"]
    assert ranked[0]["underperforms"] and ranked[1]["underperforms"] and not ranked[2]["underperforms"]
    assert ranked[0]["shortfall_vs_best"] == pytest.approx(0.7)
