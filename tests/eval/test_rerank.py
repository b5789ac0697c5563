"""Two-stage scores: the first stage's top k re-scored by the model and placed first, the rest in first-stage order."""
from types import SimpleNamespace

import pytest
import torch

from xmbench.eval import rerank
from xmbench.eval.rerank import place_above, reranked_scores
from xmbench.eval.retrieval import evaluate_embeddings
from xmbench.profile.latency import query_path


class Reranker:
    """Re-scores a candidate by `priority` · its first coordinate (an order unrelated to the dot product)."""

    modalities = ("text", "image")

    def __init__(self, k, priority=-1.0, offset=0.0, queries=None):
        self.rerank_k, self.priority, self.offset, self.queries = k, priority, offset, queries
        self.calls = []  # (queries, candidates) of each rerank call

    def rerank(self, q_modality, queries, g_modality, candidates):
        self.calls.append(tuple(candidates.shape[:2]))
        return self.priority * candidates[..., 0] + self.offset

    def encode(self, modality, inputs):
        return self.queries


def problem(seed=0, n_q=9, n_g=20, d=5):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n_q, d, generator=generator), torch.randn(n_g, d, generator=generator)


def ranking(scores_row):
    """Gallery rows best first (stable: equal scores keep row order)."""
    return torch.argsort(scores_row, descending=True, stable=True).tolist()


@pytest.mark.parametrize("offset", [0.0, -100.0, 100.0])  # re-scores inside, far below and far above the first stage
def test_the_top_k_come_first_in_rerank_order_and_the_rest_keep_first_stage_order(offset):
    q, g = problem()
    model = Reranker(k=4, offset=offset)
    scores = reranked_scores(model, "text", q, "image", g)
    first = q @ g.T
    for row in range(len(q)):
        top = first[row].topk(4).indices.tolist()
        by_rerank = sorted(top, key=lambda j: -(model.priority * g[j, 0].item()))
        rest = [j for j in ranking(first[row]) if j not in top]
        assert ranking(scores[row]) == by_rerank + rest
        others = torch.tensor(rest)
        assert torch.equal(scores[row, others], first[row, others])  # the rest's scores are untouched
        assert scores[row, top].min() > scores[row, others].max()  # strictly above: no tie with a negative


def test_re_scores_that_clear_the_rest_are_the_model_s_raw_scores():
    q, g = problem()
    model = Reranker(k=3, offset=100.0)
    scores = reranked_scores(model, "text", q, "image", g)
    top = (q @ g.T).topk(3, dim=1).indices
    assert torch.equal(scores.gather(1, top), model.priority * g[top][..., 0] + 100.0)


def test_ties_among_re_scores_stay_ties_above_the_rest():
    q, g = problem()
    scores = reranked_scores(Reranker(k=5, priority=0.0, offset=-3.0), "text", q, "image", g)
    top = (q @ g.T).topk(5, dim=1).indices
    chosen = scores.gather(1, top)
    assert torch.equal(chosen, chosen[:, :1].expand_as(chosen))  # all five equal, still
    rest = scores.scatter(1, top, float("-inf")).amax(1)
    assert (chosen[:, 0] > rest).all()


def test_place_above_by_hand():
    first = torch.tensor([[0.9, 0.1, 0.5, 0.3]])
    top = torch.tensor([[0, 2]])  # the first stage's top 2
    # re-scores 0.0 and 0.2: shifted by 0.3 − 0.0 (the best other score minus the lowest re-score)
    out = place_above(first, top, torch.tensor([[0.0, 0.2]]))
    assert out[0, 1].item() == pytest.approx(0.1) and out[0, 3].item() == pytest.approx(0.3)
    assert out[0, 2].item() == pytest.approx(0.5) and out[0, 0] > 0.3 and out[0, 0] == torch.nextafter(
        torch.tensor(0.3), torch.tensor(1.0))
    assert ranking(out[0]) == [2, 0, 3, 1]


def test_k_of_the_whole_gallery_is_the_model_s_ranking():
    q, g = problem(n_g=6)
    model = Reranker(k=50)
    scores = reranked_scores(model, "text", q, "image", g)
    assert torch.equal(scores, (model.priority * g[:, 0]).expand(len(q), -1))
    assert model.calls == [(9, 6)]


def test_chunks_and_sub_chunks_give_the_same_scores_within_the_pair_budget(monkeypatch):
    q, g = problem(n_q=23, n_g=30)
    whole = reranked_scores(Reranker(k=7), "text", q, "image", g, chunk_size=1024)
    monkeypatch.setattr(rerank, "PAIR_BUDGET", 20)  # 2 queries × 7 candidates per call
    model = Reranker(k=7)
    chunked = reranked_scores(model, "text", q, "image", g, chunk_size=5)
    # (a chunk's matmul may round its last bit differently than the whole's)
    assert torch.allclose(whole, chunked, rtol=0, atol=1e-6)
    assert all(ranking(a) == ranking(b) for a, b in zip(whole, chunked))
    assert all(rows * k <= 20 for rows, k in model.calls) and sum(r for r, _ in model.calls) == 23


def test_a_wrong_shape_from_the_model_is_an_error():
    q, g = problem()
    model = Reranker(k=3)
    model.rerank = lambda qm, queries, gm, candidates: candidates[..., 0].T
    with pytest.raises(ValueError, match=r"model.rerank returned shape \(3, 9\) for 9 queries with 3 candidates"):
        reranked_scores(model, "text", q, "image", g)


def test_evaluation_and_the_query_path_rank_by_the_re_scores():
    q, g = problem(n_q=6, n_g=6)
    # ids: query i's positive is gallery row 5 − i; the re-ranker puts the row with the largest first coordinate first
    g[:, 0] = torch.arange(6.0)
    split = SimpleNamespace(row_ids=lambda m: list(range(6)) if m == "text" else list(range(5, -1, -1)))
    model = Reranker(k=6, priority=1.0, queries=q)
    metrics, per_query = evaluate_embeddings({"text": q, "image": g}, split, ["t2i"], (1,), 1024, model)
    # every query gets row 5 first: only query 0 (whose positive is row 5) hits at rank 1
    assert per_query["t2i"].first_rank.tolist() == [1, 2, 3, 4, 5, 6]
    assert metrics["t2i"]["R@1"] == pytest.approx(1 / 6)
    top = query_path(model, {"x": torch.zeros(6, 1)}, "text", g, k=3, gallery_modality="image")()
    assert top.tolist() == [[5, 4, 3]] * 6
