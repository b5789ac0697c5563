import torch
import torch.nn.functional as F
from torch import nn

from xmbench.profile.flops import count_flops, matmul_peak_flops, tower_flops_per_sample, utilisation


def test_linear_layer_matches_a_hand_count():
    layer = nn.Linear(16, 32)
    x = torch.randn(4, 16)
    assert count_flops(layer, x) == 2 * 4 * 16 * 32  # one multiply-add per weight per row; bias not counted

    def forward_backward():
        layer(x).sum().backward()

    # backward: the weight gradient (2·B·in·out); x needs no gradient, so no input gradient
    assert count_flops(forward_backward) == 2 * (2 * 4 * 16 * 32)


class AttentionBlock(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x):
        b, t, d = x.shape
        split = lambda y: y.view(b, t, self.heads, d // self.heads).transpose(1, 2)
        attended = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)))
        return self.o(attended.transpose(1, 2).reshape(b, t, d))


def test_attention_block_matches_a_hand_count():
    b, t, d, heads = 2, 5, 8, 2
    block = AttentionBlock(d, heads)
    projections = 4 * (2 * b * t * d * d)  # q, k, v, o
    scores = 2 * b * heads * t * t * (d // heads)  # Q·Kᵀ
    mixing = 2 * b * heads * t * t * (d // heads)  # softmax(·)·V
    assert count_flops(block, torch.randn(b, t, d)) == projections + scores + mixing


def test_tower_flops_per_sample_divides_by_the_batch(tiny_setup):
    _, model, _, test_split, _ = tiny_setup
    one = {m: test_split.rows(m, torch.tensor([0])) for m in ("image", "audio")}
    four = {m: test_split.rows(m, torch.tensor([0, 0, 0, 0])) for m in ("image", "audio")}
    assert tower_flops_per_sample(model, one) == tower_flops_per_sample(model, four)
    assert all(v > 0 for v in tower_flops_per_sample(model, one).values())


def test_utilisation_and_peak():
    result = utilisation(step_flops=1e9, step_seconds=0.5, peak_flops=4e9)
    assert result == {"train_step_flops": 1e9, "achieved_flops_per_s": 2e9, "peak_flops_per_s": 4e9, "mfu": 0.5}
    assert matmul_peak_flops(size=128, min_time_s=0.01) > 0
