"""Per-run profile sections: the FLOPs table of a trained run and of one transformed after training."""
from xmbench.bench.record import Record
from xmbench.report.profile import flops_frame

FORWARD = {"text": 540_976_128.0, "image": 82_216_960.0}


def record(flops):
    return Record(suite="s", variant="v", variant_id="v", seed=0, status="ok", config={}, profile={"flops": flops})


def test_a_trained_run_shows_its_step_and_mfu():
    frame = flops_frame(record({"per_sample_forward": FORWARD, "train_step_flops": 3.2e10, "mfu": 0.4215,
                                "achieved_flops_per_s": 8.245e10, "peak_flops_per_s": 1.9562e11}))
    assert frame.to_dict("records") == [
        {"what": "text forward / sample", "GFLOP": 0.541}, {"what": "image forward / sample", "GFLOP": 0.0822},
        {"what": "training step (fwd+bwd)", "GFLOP": 32.0}, {"what": "achieved GFLOP/s (median step)", "GFLOP": 82.45},
        {"what": "measured matmul peak GFLOP/s", "GFLOP": 195.62}, {"what": "MFU (%)", "GFLOP": 42.15}]


def test_a_run_quantised_after_training_says_why_it_has_no_step():
    note = "quantised after training: no training step to count"
    frame = flops_frame(record({"per_sample_forward": FORWARD, "train_step_flops": None, "mfu": None, "note": note}))
    assert list(frame["what"]) == ["text forward / sample", "image forward / sample", f"training step: {note}"]
    assert frame["GFLOP"].iloc[-1] == "–"
