"""A suite variant with model.fusion runs end to end: trained, evaluated through the re-ranker, timed, saved."""
import pytest

from xmbench.bench.runner import run_suite
from xmbench.config import DIRECTIONS, resolve
from xmbench.eval import rerank
from xmbench.models.fusion._layers import FUSION_FILE
from xmbench.suite import parse_suite

FUSED = {"model.fusion": {"name": "cross_attention", "k": 10}}


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def test_the_config_id_of_a_fused_variant(tiny_base):
    assert resolve(tiny_base, FUSED).config_id() != resolve(tiny_base).config_id()


def test_a_fused_variant_records_metrics_and_a_query_latency(tiny_base, tmp_path, monkeypatch):
    queries_seen = []
    original = rerank.reranked_scores

    def spy(model, q_modality, queries, g_modality, gallery, chunk_size=1024, states=None):
        queries_seen.append(len(queries))
        return original(model, q_modality, queries, g_modality, gallery, chunk_size, states)

    monkeypatch.setattr(rerank, "reranked_scores", spy)
    suite = parse_suite({"suite": {"name": "t"}, "base": tiny_base, "variants": {"fused": FUSED}})
    (record,) = run_suite(suite, tmp_path / "rec", tmp_path / "art", progress=False, isolate=False)
    assert record.ok, record.error
    # validation (2 points × 6 directions), evaluation (6) through the re-ranker; the timed query path, one query each
    assert queries_seen.count(16 * 5) == 2 * 2 and queries_seen.count(16) == 2 * 4  # t2i, t2a: 5 captions per item
    assert queries_seen.count(24 * 5) == 2 and queries_seen.count(24) == 4 and queries_seen.count(1) >= 20
    assert set(DIRECTIONS) <= set(record.metrics)
    t2i = record.metrics["t2i"]
    assert t2i["n_queries"] == 24 * 5 and t2i["n_gallery"] == 24 and 0 <= t2i["R@1"] <= t2i["R@10"] <= 1
    assert record.timings["query_latency_s"]["p50"] > 0
    assert [p["step"] for p in record.curve] == [3, 6]  # validation ranks through the re-ranker too
    assert record.costs["trainable_params"] > 0 and record.costs["adapter_bytes"] > 0
    assert (tmp_path / "art" / "t" / "fused__seed0" / FUSION_FILE).exists()
