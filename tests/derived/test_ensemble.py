"""A derived run: an ensemble of two trained variants, rebuilt from their artifacts, gets a record like any run."""
import torch.nn.functional as F

from tests.conftest import user_model
from xmbench.bench.record import read_records
from xmbench.bench.runner import run_suite
from xmbench.data.sources import load_split
from xmbench.eval.retrieval import encode_split, evaluate_embeddings
from xmbench.models.artifacts import load_artifacts
from xmbench.suite import parse_suite


def test_ensemble_of_two_variants_is_evaluated_from_their_artifacts(tiny_base, tmp_path):
    suite = parse_suite({"suite": {"name": "ens"}, "base": tiny_base,
                         "variants": {"r8": {}, "r2": {"model.*.adapter.rank": 2}},
                         "derived": {"both": {"name": "ensemble", "inputs": ["r8", "r2"], "weights": [0.75, 0.25]}}})
    r8, r2, both = run_suite(suite, tmp_path / "rec", tmp_path / "art", progress=False, isolate=False)
    assert both.ok, both.error
    assert both.config["derived"] == {"name": "ensemble", "weights": [0.75, 0.25]}
    assert both.config["inputs"] == {"r8": r8.variant_id, "r2": r2.variant_id}
    assert both.costs["total_params"] == r8.costs["total_params"] + r2.costs["total_params"]
    assert "query_latency_s" in both.timings and both.steps == []
    # the same metrics by hand: weighted mean of the members' normalised embeddings
    split = load_split(suite.variants[0].config.data, "test")
    members = [load_artifacts(tmp_path / "art" / "ens" / f"{name}__seed0") for name in ("r8", "r2")]
    embeddings = {m: F.normalize(0.75 * encode_split(members[0], split, m) + 0.25 * encode_split(members[1], split, m),
                                 dim=-1) for m in ("text", "image", "audio")}
    expected, _ = evaluate_embeddings(embeddings, split, suite.variants[0].config.eval.directions)
    for direction in ("t2i", "i2a", "a2t"):
        assert abs(both.metrics[direction]["mAP"] - expected[direction]["mAP"]) < 1e-6
    assert [r.variant for r in read_records(tmp_path / "rec", "ens")] == ["both", "r2", "r8"]


def test_a_derived_run_whose_input_failed_fails_clearly(tiny_base, tmp_path):
    suite = parse_suite({"suite": {"name": "ens2"}, "base": tiny_base,
                         "variants": {"ok": {}, "bad": user_model("no_such_module:make")},
                         "derived": {"both": {"name": "ensemble", "inputs": ["ok", "bad"]}}})
    _, bad, both = run_suite(suite, tmp_path / "rec", tmp_path / "art", progress=False, isolate=False)
    assert not bad.ok and not both.ok
    assert "derived run needs the trained artifacts of bad seed 0" in both.error
