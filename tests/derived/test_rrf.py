"""rrf: reciprocal-rank fusion against a brute-force rank computation."""
import pytest
import torch

from tests.derived._helpers import (
    DIRECTIONS,
    assert_same_metrics,
    embeddings,
    member,
    metrics_of_scores,
    split,
)
from xmbench.derived.rrf import competition_ranks
from xmbench.eval.retrieval import direction_modalities, encode_split, evaluate_model
from xmbench.registry import DERIVED

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def brute_force_ranks(scores: torch.Tensor) -> torch.Tensor:
    """rank of (i, j): 1 + the gallery rows of query i scoring strictly higher than j, every pair compared."""
    return 1 + (scores.unsqueeze(1) > scores.unsqueeze(2)).sum(dim=2).float()


def test_ranks_count_the_rows_strictly_ahead_and_ties_share_the_best_rank():
    scores = torch.tensor([[0.5, 0.9, 0.5, 0.1], [0.0, 0.0, 0.0, 0.0]])
    assert competition_ranks(scores).tolist() == [[2, 1, 2, 4], [1, 1, 1, 1]]
    generator = torch.Generator().manual_seed(0)
    noisy = torch.randint(0, 5, (7, 9), generator=generator).float()  # many ties
    by_loop = [[1 + sum(1 for o in range(9) if noisy[i, o] > noisy[i, j]) for j in range(9)] for i in range(7)]
    assert competition_ranks(noisy).tolist() == by_loop == brute_force_ranks(noisy).long().tolist()


def test_fused_scores_and_metrics_equal_a_brute_force_computation(tiny_base):
    members = [member(tiny_base, seed=0), member(tiny_base, seed=1)]
    fused = DERIVED.bind(DERIVED.default("rrf"))(members, val=None, eval_config=None)
    assert fused.k == 60
    data = split(tiny_base)
    own = [embeddings(m, data) for m in members]
    hand = {}
    for direction in DIRECTIONS:
        q, g = direction_modalities(direction)
        hand[direction] = sum(1.0 / (60 + brute_force_ranks(e[q] @ e[g].T)) for e in own)
    text, image = encode_split(fused, data, "text"), encode_split(fused, data, "image")
    assert torch.allclose(fused.score("text", text, "image", image), hand["t2i"], rtol=1e-6, atol=0)
    metrics, _, _ = evaluate_model(fused, data, list(DIRECTIONS))
    assert_same_metrics(metrics, metrics_of_scores(hand, data))


def test_k_is_an_option(tiny_base):
    members = [member(tiny_base, seed=0), member(tiny_base, seed=1)]
    fused = DERIVED.bind(DERIVED.default("rrf", k=0.0))(members, val=None, eval_config=None)
    data = split(tiny_base)
    audio, image = encode_split(fused, data, "audio"), encode_split(fused, data, "image")
    scores = fused.score("audio", audio, "image", image)
    own = [embeddings(m, data) for m in members]
    expected = sum(1.0 / brute_force_ranks(e["audio"] @ e["image"].T) for e in own)
    assert torch.allclose(scores, expected, rtol=1e-6, atol=0)
