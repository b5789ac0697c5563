import numpy as np

from xmbench.bench.compare import compare
from xmbench.bench.record import Record

N_QUERIES = 200


def record(seed=0, hit_rate=0.5, latency_s=0.010, variant_id="v1", status="ok", params=100, shift=0):
    rng = np.random.default_rng(seed + shift)
    first = np.where(rng.random(N_QUERIES) < hit_rate, 1, 20)
    metrics = {"t2i": {"R@1": float(np.mean(first <= 1)), "R@5": float(np.mean(first <= 5)),
                       "R@10": float(np.mean(first <= 10)), "mAP": float(np.mean(1 / first))}}
    samples = list(latency_s * (1 + 0.02 * np.random.default_rng(seed).random(40)))
    return Record(suite="s", variant="v", variant_id=variant_id, seed=seed, status=status, config={},
                  metrics=metrics if status == "ok" else {},
                  per_query={"t2i": {"first_rank": first.tolist(), "ap": (1 / first).tolist()}},
                  timings={"query_latency_s": {"samples": samples}}, costs={"trainable_params": params},
                  error=None if status == "ok" else "Boom: it broke")


def marks(deltas):
    return {d.metric: d.mark for d in deltas}


def test_identical_runs_change_nothing():
    deltas = compare([record()], [record()])
    assert marks(deltas)["t2i R@1"] == "not significant"
    assert marks(deltas)["query_latency_s"] == "not significant"
    assert marks(deltas)["trainable_params"] == "equal"
    quality = next(d for d in deltas if d.metric == "t2i R@1")
    assert quality.interval == (0.0, 0.0) and quality.delta == 0.0


def test_a_real_quality_drop_is_worse_with_an_interval_below_zero():
    deltas = compare([record(hit_rate=0.3)], [record(hit_rate=0.6)])
    r1 = next(d for d in deltas if d.metric == "t2i R@1")
    assert r1.mark == "worse" and r1.interval[1] < 0 and r1.delta < -20


def test_timings_single_process_and_per_process():
    slow = compare([record(latency_s=0.013)], [record(latency_s=0.010)])
    assert marks(slow)["query_latency_s"] == "worse"
    faster = compare([record(seed=s, latency_s=0.007) for s in range(4)], [record(seed=s) for s in range(4)])
    delta = next(d for d in faster if d.metric == "query_latency_s")
    assert delta.mark == "better" and "permutation test over 4/4 process p10s" in delta.note
    assert abs(delta.ratio - 0.7) < 0.02


def test_small_timing_changes_do_not_count():
    deltas = compare([record(latency_s=0.0102)], [record(latency_s=0.010)])
    assert marks(deltas)["query_latency_s"] == "not significant"  # 2% is under the 5% minimum effect


def test_status_marks():
    assert marks(compare([record(variant_id="v2")], [record()])) == {"config": "incomparable"}
    failed = compare([record(status="failed")], [record()])
    assert marks(failed) == {"status": "new failure"} and failed[0].note == "Boom: it broke"
    assert marks(compare([record()], [record(status="failed")])) == {"status": "fixed"}
    assert marks(compare([record()], [])) == {"status": "new"}


def test_exact_costs():
    assert marks(compare([record(params=101)], [record(params=100)]))["trainable_params"] == "worse"
    assert marks(compare([record(params=99)], [record(params=100)]))["trainable_params"] == "better"


def test_probe_timings_are_compared_statistically_and_flops_exactly():
    def probed(latency_s, flops):
        r = record(latency_s=0.010)
        r.timings["encode.text.b8"] = {"samples": list(latency_s * (1 + 0.02 * np.random.default_rng(1).random(40)))}
        r.costs["flops.text_per_sample"] = flops
        return r

    deltas = compare([probed(0.013, 1000)], [probed(0.010, 900)])
    assert marks(deltas)["encode.text.b8"] == "worse"
    assert marks(deltas)["flops.text_per_sample"] == "worse"
    assert marks(compare([probed(0.010, 900)], [probed(0.010, 900)]))["flops.text_per_sample"] == "equal"


def with_reference(r: Record, reference_s: float) -> Record:
    """The record as if its process also timed the machine reference beside its query path."""
    noise = 1 + 0.02 * np.random.default_rng(r.seed + 7).random(40)
    r.timings["machine_ref_s"] = {"samples": list(reference_s * noise)}
    return r


def test_a_slower_machine_is_divided_away_and_a_slower_model_is_not():
    base = [with_reference(record(seed=s), 0.001) for s in range(4)]
    machine = compare([with_reference(record(seed=s, latency_s=0.013), 0.0013) for s in range(4)], base)
    delta = next(d for d in machine if d.metric == "query_latency_s")
    assert delta.mark == "not significant" and abs(delta.ratio - 1.0) < 0.02
    assert "over the machine reference (raw ×1.3" in delta.note
    model = compare([with_reference(record(seed=s, latency_s=0.013), 0.001) for s in range(4)], base)
    delta = next(d for d in model if d.metric == "query_latency_s")
    assert delta.mark == "worse" and abs(delta.ratio - 1.3) < 0.02
    assert "machine_ref_s" not in marks(model)  # the reference divides; it is never judged itself


def test_the_reference_is_used_only_when_every_process_on_both_sides_timed_it():
    base = [record(seed=s) for s in range(4)]  # an older baseline, before the reference existed
    current = [with_reference(record(seed=s, latency_s=0.013), 0.0013) for s in range(4)]
    delta = next(d for d in compare(current, base) if d.metric == "query_latency_s")
    assert delta.mark == "worse" and abs(delta.ratio - 1.3) < 0.02 and "machine reference" not in delta.note


def test_processes_crowded_by_other_work_are_left_out_and_too_few_quiet_ones_are_not_judged():
    base = [with_reference(record(seed=s), 0.001) for s in range(4)]
    current = [with_reference(record(seed=s, latency_s=0.013), 0.001) for s in range(4)]
    current[0].costs["latency_foreign_cpu_share"] = 0.4  # a busy neighbour while this process timed its query path
    delta = next(d for d in compare(current, base) if d.metric == "query_latency_s")
    assert delta.mark == "worse" and "over 4/3 process p10s" in delta.note and "1 busy processes left out" in delta.note
    for r in current[1:3]:
        r.costs["latency_foreign_cpu_share"] = 0.3
    delta = next(d for d in compare(current, base) if d.metric == "query_latency_s")
    assert delta.mark == "not significant" and delta.ratio is None
    assert delta.note.startswith("not judged: other processes took over 10% of the CPUs while 3 of 8 processes")
    quiet = [with_reference(record(seed=s, latency_s=0.013), 0.001) for s in range(4)]
    for r in quiet:
        r.costs["latency_foreign_cpu_share"] = 0.05  # under the threshold: judged as before
    assert next(d for d in compare(quiet, base) if d.metric == "query_latency_s").mark == "worse"


def test_a_timing_not_judged_is_shown_in_the_comparison_table():
    from xmbench.report.markdown import comparison_table

    base = [with_reference(record(seed=s), 0.001) for s in range(4)]
    current = [with_reference(record(seed=s), 0.001) for s in range(4)]
    for r in current:
        r.costs["latency_foreign_cpu_share"] = 0.5
    table = comparison_table(compare(current, base))
    assert "query_latency_s" in table and "not judged" in table
