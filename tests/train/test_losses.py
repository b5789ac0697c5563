import math

import torch
import torch.nn.functional as F

from xmbench.registry import LOSSES
from xmbench.train.schedules import warmup_constant, warmup_cosine
from xmbench.train.step import LossInput

PAIRS3 = [("text", "image"), ("text", "audio"), ("image", "audio")]


def infonce(embeddings, scale, pairs):
    items = torch.arange(len(next(iter(embeddings.values()))))
    scales = {f"{a}-{b}": scale for a, b in pairs}
    return LOSSES.bind(LOSSES.default("infonce"))(LossInput(embeddings, dict.fromkeys(embeddings, items), scales, pairs))


def test_infonce_matches_a_hand_computation():
    torch.manual_seed(0)
    a, b = F.normalize(torch.randn(4, 3), dim=-1), F.normalize(torch.randn(4, 3), dim=-1)
    scale = torch.tensor(10.0)
    out = infonce({"text": a, "image": b}, scale, [("text", "image")])
    logits = (scale * a @ b.T).tolist()

    def ce_rows(rows):
        return [-rows[i][i] + math.log(sum(math.exp(x) for x in rows[i])) for i in range(4)]

    columns = [list(col) for col in zip(*logits)]
    expected = (sum(ce_rows(logits)) / 4 + sum(ce_rows(columns)) / 4) / 2
    assert abs(out.parts["text-image"].item() - expected) < 1e-5
    per_item = [(r + c) / 2 for r, c in zip(ce_rows(logits), ce_rows(columns))]
    assert torch.allclose(out.per_item, torch.tensor(per_item), atol=1e-5)


def test_infonce_gives_one_part_per_pair_low_when_aligned():
    e = F.normalize(torch.eye(4), dim=-1)
    out = infonce({"text": e, "image": e, "audio": e}, torch.tensor(100.0), PAIRS3)
    assert set(out.parts) == {"text-image", "text-audio", "image-audio"}
    assert all(v.item() < 1e-6 for v in out.parts.values())


def test_schedules():
    assert warmup_cosine(0, 100, 10) == 0.1 and warmup_cosine(9, 100, 10) == 1.0
    assert warmup_cosine(10, 100, 10) == 1.0 and abs(warmup_cosine(100, 100, 10)) < 1e-12
    assert abs(warmup_cosine(55, 100, 10) - 0.5) < 1e-12
    assert warmup_constant(50, 100, 10) == 1.0
