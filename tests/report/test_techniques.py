"""Techniques against the suite's reference: paired deltas over the same queries, verdicts said plainly."""
import numpy as np

from xmbench.bench.record import Record
from xmbench.report.techniques import technique_frame, technique_table


def record(variant, seed, hits_t2i, hits_i2t, trainable=100):
    """A record whose per-query first ranks are 1 (hit) or 20 (miss)."""
    per_query = {d: {"first_rank": [1 if h else 20 for h in hits], "ap": [1.0 if h else 0.05 for h in hits]}
                 for d, hits in (("t2i", hits_t2i), ("i2t", hits_i2t))}
    metrics = {d: {"R@1": float(np.mean([r == 1 for r in q["first_rank"]]))} for d, q in per_query.items()}
    metrics["rsum"] = 0.0
    return Record(suite="s", variant=variant, variant_id=variant, seed=seed, status="ok", config={}, metrics=metrics,
                  per_query=per_query, costs={"trainable_params": trainable, "step_time_s": 0.5, "adapter_bytes": 10},
                  timings={"encode.text.b1": {"p50": 0.004}, "encode.text.b8": {"p50": 0.02}}, reference="ref")


def test_paired_deltas_with_plain_verdicts():
    n = 200
    base = [np.arange(n) % 2 == 0, np.arange(n) % 4 == 0]  # t2i R@1 50%, i2t 25%
    better = [np.ones(n, bool), np.arange(n) % 4 == 0]  # t2i +50 points, i2t unchanged
    records = [record("ref", s, *base) for s in (0, 1)] + [record("big", s, *better, trainable=400) for s in (0, 1)]
    frame = technique_frame(records).set_index("variant")
    assert frame.loc["big", "Δ t2i R@1"].startswith("+50.0 [") and frame.loc["big", "Δ t2i R@1"].endswith("better")
    assert frame.loc["big", "Δ i2t R@1"] == "+0.0 [+0.0, +0.0] not significant"
    assert frame.loc["big", "Δ rsum"].startswith("+150.0")  # R@1, R@5, R@10 each +50 points on t2i
    assert frame.loc["big", "trainable"] == 400 and frame.loc["big", "encode text b1 ms"] == "4.00"
    assert "ref (reference)" in frame.index and frame.loc["ref (reference)", "Δ rsum"] == "—"
    assert "an interval that contains 0 is not significant" in technique_table(records)


def test_a_suite_without_reference_has_no_technique_table():
    plain = record("ref", 0, [True], [True])
    plain.reference = None
    assert technique_frame([plain]).empty and technique_table([plain]) == ""


def test_a_worse_technique_is_called_worse():
    n = 100
    records = [record("ref", 0, np.ones(n, bool), np.ones(n, bool)), record("bad", 0, np.zeros(n, bool), np.ones(n, bool))]
    frame = technique_frame(records).set_index("variant")
    assert frame.loc["bad", "Δ t2i R@1"] == "-100.0 [-100.0, -100.0] worse"
    assert frame.loc["ref (reference)", "Δ t2i R@1"] == "—"  # the reference is not compared with itself


def test_hard_negative_queries_compared_apart():
    n = 100
    hard_rows = list(range(0, n, 4))  # a quarter of the queries have a known hard negative
    base = np.ones(n, bool)
    base[hard_rows] = False  # the reference misses exactly those
    records = [record("ref", 0, base, base), record("fixed", 0, np.ones(n, bool), np.ones(n, bool))]
    for r in records:
        for ranks in r.per_query.values():
            ranks["hard_negative_rows"] = hard_rows
    frame = technique_frame(records).set_index("variant")
    assert frame.loc["fixed", "Δ R@1 hard-negative queries"] == "+100.0 [+100.0, +100.0] better"
    assert frame.loc["fixed", "Δ t2i R@1"] == "+25.0 [+17.0, +34.0] better"  # diluted over all queries
    del records[0].per_query["t2i"]["hard_negative_rows"]  # a record that does not say: no column
    assert "Δ R@1 hard-negative queries" not in technique_frame(records).columns


def test_a_variant_without_embedding_geometry_shows_a_dash_not_nan():
    n = 200
    hits = [np.arange(n) % 2 == 0, np.arange(n) % 4 == 0]
    records = [record("ref", s, *hits) for s in (0, 1)] + [record("fusion", s, *hits) for s in (0, 1)]
    for r in records[:2]:  # the reference embeds; the fusion variant scores pairs, so no geometry was measured
        r.profile = {"alignment": {"pairs": {"text-image": {"alignment": 0.5}}, "uniformity": {"text": -2.0}}}
    frame = technique_frame(records).set_index("variant")
    assert frame.loc["ref (reference)", "alignment"] == "0.500" and frame.loc["ref (reference)", "uniformity"] == "-2.000"
    assert frame.loc["fusion", "alignment"] == "–" and frame.loc["fusion", "uniformity"] == "–"
