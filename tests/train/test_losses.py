import math

import torch
import torch.nn.functional as F

from xmbench.train.losses import infonce
from xmbench.train.schedules import warmup_constant, warmup_cosine


def test_infonce_matches_a_hand_computation():
    torch.manual_seed(0)
    a, b = F.normalize(torch.randn(4, 3), dim=-1), F.normalize(torch.randn(4, 3), dim=-1)
    scale = torch.tensor(10.0)
    total, parts = infonce({"text": a, "image": b}, scale, [("text", "image")])
    logits = (scale * a @ b.T).tolist()

    def ce(rows):
        return sum(-rows[i][i] + math.log(sum(math.exp(x) for x in rows[i])) for i in range(4)) / 4

    expected = (ce(logits) + ce([list(col) for col in zip(*logits)])) / 2
    assert abs(total.item() - expected) < 1e-5 and abs(parts["text-image"].item() - expected) < 1e-5


def test_infonce_is_the_mean_over_pairs_and_low_when_aligned():
    e = F.normalize(torch.eye(4), dim=-1)
    total, parts = infonce({"text": e, "image": e, "audio": e}, torch.tensor(100.0),
                           [("text", "image"), ("text", "audio"), ("image", "audio")])
    assert set(parts) == {"text-image", "text-audio", "image-audio"}
    assert total.item() < 1e-6


def test_schedules():
    assert warmup_cosine(0, 100, 10) == 0.1 and warmup_cosine(9, 100, 10) == 1.0
    assert warmup_cosine(10, 100, 10) == 1.0 and abs(warmup_cosine(100, 100, 10)) < 1e-12
    assert abs(warmup_cosine(55, 100, 10) - 0.5) < 1e-12
    assert warmup_constant(50, 100, 10) == 1.0
