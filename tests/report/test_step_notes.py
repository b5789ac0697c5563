"""The step-notes table: every numeric note followed over the steps, per variant, from hand-made records."""
from xmbench.bench.record import Record
from xmbench.report.markdown import render_markdown
from xmbench.report.step_notes import numeric_notes, run_notes, step_notes_frame


def run(seed, notes_per_step, variant="mined", status="ok"):
    steps = [{"step": i, "loss": 1.0, "notes": notes} for i, notes in enumerate(notes_per_step)]
    return Record(suite="s", variant=variant, variant_id=variant, seed=seed, status=status, config={}, steps=steps)


def test_numbers_flags_and_dicts_of_numbers_are_kept_the_rest_is_not():
    notes = {"m/recall": 0.25, "s/overflow": True, "s/max_activation": {"tower/text": 3.5, "bad": "x"},
             "m/order": ["t2i"], "s/loss_scale": None, "s/nan": float("nan"), "m/name": "text"}
    assert numeric_notes(notes) == {"m/recall": 0.25, "s/overflow": 1.0, "s/max_activation/tower/text": 3.5}


def test_a_run_follows_each_note_over_the_steps_that_carry_it():
    record = run(0, [{"m/recall": 0.1}, {}, {"m/recall": 0.5}, {"m/recall": 0.3}])
    assert run_notes(record) == {"m/recall": {"first": 0.1, "last": 0.3, "mean": 0.3, "min": 0.1, "max": 0.5, "steps": 3}}


def test_a_variant_averages_first_and_last_over_seeds_and_spans_the_extremes():
    records = [run(0, [{"m/recall": 0.1}, {"m/recall": 0.5}]), run(1, [{"m/recall": 0.3}, {"m/recall": 0.2}]),
               run(2, [{"m/recall": 9.0}], status="failed")]
    row = step_notes_frame(records).iloc[0].to_dict()
    assert row == {"variant": "mined", "note": "m/recall", "seeds": 2, "first": 0.2, "last": 0.35, "mean": 0.275,
                   "min": 0.1, "max": 0.5}  # means 0.3 and 0.25


def test_the_markdown_report_shows_the_notes_and_omits_the_section_without_any():
    with_notes = render_markdown([run(0, [{"mine_negatives/mining_recall": 0.125}])])
    assert "Step notes:" in with_notes and "mine_negatives/mining_recall" in with_notes and "0.125" in with_notes
    assert "Step notes:" not in render_markdown([run(0, [{}, {}])])


def test_whole_numbers_print_whole_and_fractions_to_four_significant_digits():
    table = render_markdown([run(0, [{"stability/loss_scale": 65536.0, "m/recall": 0.0427351}])])
    assert "65536" in table and "6.554e+04" not in table and "65540" not in table
    assert "0.04274" in table
