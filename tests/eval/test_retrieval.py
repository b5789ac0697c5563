import numpy as np
import pytest
import torch

import xmbench
from xmbench.eval import retrieval
from xmbench.eval.retrieval import evaluate_retrieval, evaluate_scores, rank_queries, rank_scores


def brute_force(q, g, query_ids, gallery_ids):
    """Full sort per query: score descending, negatives ahead of positives on ties."""
    scores = q @ g.T
    first, ap, ap10 = [], [], []
    for row in range(len(q)):
        positive = [gid == query_ids[row] for gid in gallery_ids]
        order = sorted(range(len(g)), key=lambda j: (-scores[row, j], positive[j]))
        hits = [rank + 1 for rank, j in enumerate(order) if positive[j]]
        first.append(hits[0])
        ap.append(np.mean([(n + 1) / h for n, h in enumerate(hits)]))
        ap10.append(sum((n + 1) / h for n, h in enumerate(hits) if h <= 10) / min(len(hits), 10))
    return np.array(first), np.array(ap), np.array(ap10)


def random_problem(seed, n_query=40, n_gallery=60, n_ids=15, dim=4):
    rng = np.random.default_rng(seed)
    g = rng.integers(-2, 3, (n_gallery, dim)).astype(np.float32)  # small integers: many exact ties
    gallery_ids = list(rng.integers(0, n_ids, n_gallery))
    q = rng.integers(-2, 3, (n_query, dim)).astype(np.float32)
    query_ids = list(rng.choice(sorted(set(gallery_ids)), n_query))
    return q, g, query_ids, gallery_ids


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("counting_max", [32, 0])  # the counting path and the sorting path
def test_matches_brute_force_with_ties_and_several_positives(seed, counting_max, monkeypatch):
    monkeypatch.setattr(retrieval, "COUNTING_MAX_POSITIVES", counting_max)
    q, g, qi, gi = random_problem(seed)
    first, ap, ap10 = brute_force(q, g, qi, gi)
    ranks = rank_queries(q, g, qi, gi, chunk_size=7)
    assert np.array_equal(ranks.first_rank, first)
    np.testing.assert_allclose(ranks.average_precision, ap, rtol=1e-12)
    np.testing.assert_allclose(ranks.average_precision_at_10, ap10, rtol=1e-12)


def test_metrics_match_brute_force_definitions():
    q, g, qi, gi = random_problem(7, n_query=50)
    first, ap, ap10 = brute_force(q, g, qi, gi)
    m = evaluate_retrieval(q, g, qi, gi, ks=(1, 5, 10))
    assert m["R@1"] == np.mean(first <= 1) and m["R@5"] == np.mean(first <= 5) and m["R@10"] == np.mean(first <= 10)
    assert m["mAP"] == pytest.approx(ap.mean()) and m["mAP@10"] == pytest.approx(ap10.mean())
    assert m["MRR"] == pytest.approx(np.mean(1 / first))
    assert m["median_rank"] == np.median(first) and m["mean_rank"] == pytest.approx(first.mean())
    assert (m["n_queries"], m["n_gallery"]) == (50, 60)
    assert m["positives_per_query"] == pytest.approx(np.mean([gi.count(i) for i in qi]))
    assert m["tie_policy"] == "pessimistic" and m["score_dtype"] == "float32"


def test_exact_values_on_a_hand_made_example():
    # gallery: item A twice (two positives of query A), item B once
    g = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    gallery_ids = ["A", "B", "A"]
    q = torch.tensor([[0.0, 1.0]])  # scores: A=0, B=1, A=0.8 → ranking B, A(0.8), A(0)
    m = evaluate_retrieval(q, g, ["A"], gallery_ids, ks=(1, 2))
    assert m["R@1"] == 0.0 and m["R@2"] == 1.0
    assert m["MRR"] == 0.5 and m["median_rank"] == 2.0
    assert m["mAP"] == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_constant_embeddings_get_the_worst_ranks():
    n = 30
    ids = list(range(n))
    constant = torch.ones(n, 8)
    m = evaluate_retrieval(constant, constant, ids, ids)
    assert m["R@10"] == 0.0 and m["median_rank"] == n and m["mean_rank"] == n
    two_positives = evaluate_retrieval(constant[:5], constant[:10], [0, 1, 2, 3, 4], [0, 1, 2, 3, 4] * 2)
    assert two_positives["mean_rank"] == 9.0  # 8 negatives tie ahead of the first of two positives


def test_chunk_size_does_not_change_results():
    q, g, qi, gi = random_problem(3, n_query=33)
    full = rank_queries(q, g, qi, gi, chunk_size=1000)
    small = rank_queries(q, g, qi, gi, chunk_size=4)
    assert np.array_equal(full.first_rank, small.first_rank)
    assert np.array_equal(full.average_precision, small.average_precision)


def test_public_api_and_bad_input():
    assert xmbench.evaluate_retrieval is evaluate_retrieval
    q = torch.randn(3, 4)
    with pytest.raises(ValueError, match="no positive in the gallery.*id 'z'"):
        evaluate_retrieval(q, q, ["a", "b", "z"], ["a", "b", "c"])
    with pytest.raises(ValueError, match="NaN"):
        evaluate_retrieval(q * float("nan"), q, [0, 1, 2], [0, 1, 2])
    with pytest.raises(ValueError, match="equal d"):
        evaluate_retrieval(q, torch.randn(3, 5), [0, 1, 2], [0, 1, 2])


@pytest.mark.parametrize("seed", range(3))
def test_from_scores_matches_brute_force_on_a_non_dot_product_score(seed):
    q, g, qi, gi = random_problem(seed)
    scores = -np.abs(q[:, None, :] - g[None, :, :]).sum(-1)  # negative L1 distance: many exact ties
    ranks = rank_scores(scores, qi, gi, chunk_size=9)
    # the brute force sorts q @ g.T; give it embeddings whose dot products are these scores
    first, ap, _ = brute_force(scores, np.eye(len(g), dtype=np.float32), qi, gi)
    assert np.array_equal(ranks.first_rank, first)
    np.testing.assert_allclose(ranks.average_precision, ap, rtol=1e-12)


def test_from_scores_equals_from_embeddings():
    q, g, qi, gi = random_problem(4)
    assert evaluate_scores(torch.from_numpy(q) @ torch.from_numpy(g).T, qi, gi) == evaluate_retrieval(q, g, qi, gi)
    assert xmbench.evaluate_scores is evaluate_scores
    with pytest.raises(ValueError, match="40 queries with 39 ids"):
        evaluate_scores(np.zeros((40, 60)), qi[:39], gi)
    with pytest.raises(ValueError, match="scores contain NaN"):
        evaluate_scores(np.full((40, 60), np.nan), qi, gi)


@pytest.mark.parametrize("as_ids", [list, np.array, torch.tensor, lambda ids: [f"item-{i}" for i in ids]],
                         ids=["list", "numpy", "torch", "strings"])
def test_ids_of_any_kind_match_by_value(as_ids):
    torch.manual_seed(0)
    queries, gallery = torch.randn(6, 4), torch.randn(6, 4)
    reference = evaluate_retrieval(queries, gallery, list(range(6)), list(range(6)))
    assert evaluate_retrieval(queries, gallery, as_ids(list(range(6))), as_ids(list(range(6)))) == reference
    scores = queries @ gallery.T
    assert evaluate_scores(scores, as_ids(list(range(6))), as_ids(list(range(6)))) == reference


def test_ranking_runs_where_the_embeddings_are(device):
    torch.manual_seed(0)
    q, g = torch.randn(300, 8), torch.randn(200, 8)
    query_ids, gallery_ids = [i % 200 for i in range(300)], list(range(200))
    on_cpu = evaluate_retrieval(q, g, query_ids, gallery_ids, chunk_size=64)
    assert evaluate_retrieval(q.to(device), g.to(device), query_ids, gallery_ids, chunk_size=64) == on_cpu
    assert evaluate_scores((q @ g.T).to(device), query_ids, gallery_ids) == on_cpu
