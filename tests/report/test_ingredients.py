"""Derived runs against their best ingredient: the best chosen by mean rsum, deltas paired over the same queries."""
import numpy as np

from xmbench.bench.record import Record
from xmbench.report.ingredients import ingredient_frame, ingredient_table
from xmbench.report.markdown import render_markdown

N = 100


def record(variant, seed, hits, inputs=None, query_s=0.01):
    """A record whose t2i first ranks are 1 (hit) or 20 (miss); rsum = 100 × R@1 (enough to rank ingredients)."""
    per_query = {"t2i": {"first_rank": [1 if h else 20 for h in hits], "ap": [1.0 if h else 0.05 for h in hits]}}
    r1 = float(np.mean(hits))
    config = {"inputs": {name: "id" for name in inputs}} if inputs else {}
    return Record(suite="s", variant=variant, variant_id=variant, seed=seed, status="ok", config=config,
                  metrics={"t2i": {"R@1": r1}, "rsum": 100 * r1}, per_query=per_query,
                  timings={"query_latency_s": {"p50": query_s}})


def test_the_best_ingredient_is_the_baseline_and_the_deltas_are_paired_against_it():
    weak, strong = np.arange(N) % 4 == 0, np.arange(N) % 2 == 0  # R@1 25% and 50%
    ensemble = np.arange(N) % 2 == 0
    ensemble[1] = True  # one more hit than the strong ingredient: +1 point, every other query the same
    records = [record("weak", s, weak) for s in (0, 1)] + [record("strong", s, strong) for s in (0, 1)]
    records += [record("ens", s, ensemble, inputs=["weak", "strong"], query_s=0.04) for s in (0, 1)]
    (row,) = ingredient_frame(records).to_dict("records")
    assert row["derived run"] == "ens" and row["best ingredient"] == "strong" and row["seeds"] == 2
    assert row["Δ t2i R@1"].startswith("+1.0 [") and row["Δ t2i R@1"].endswith("not significant")
    assert row["Δ rsum"].startswith("+3.0")  # R@1, R@5 and R@10 each one query better
    assert row["query ms"] == "40.00" and row["best ingredient query ms"] == "10.00"


def test_a_derived_run_worse_than_its_best_input_is_called_worse_and_shown_in_the_report():
    strong, bad = np.ones(N, bool), np.zeros(N, bool)
    records = [record("a", 0, strong), record("b", 0, bad), record("soup", 0, bad, inputs=["a", "b"])]
    (row,) = ingredient_frame(records).to_dict("records")
    assert row["best ingredient"] == "a" and row["Δ t2i R@1"] == "-100.0 [-100.0, -100.0] worse"
    assert "Derived runs against their best ingredient" in render_markdown(records)


def test_a_suite_without_derived_runs_has_no_such_section():
    records = [record("a", 0, np.ones(N, bool))]
    assert ingredient_frame(records).empty and ingredient_table(records) == ""
