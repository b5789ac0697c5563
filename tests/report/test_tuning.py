"""What a tuned suite shows: the chosen point beside the verdict, the compact search table, its run time, the plot."""
from tests.report.test_roadmap import tuned_records
from xmbench.report.html import render_html, render_roadmap_html
from xmbench.report.markdown import render_markdown, suite_run_time
from xmbench.report.techniques import technique_frame
from xmbench.report.tuning import search_frame, searches, tuning_section


def test_the_search_table_is_one_row_of_scores_with_the_choice_in_bold():
    search = searches(tuned_records())["weak@tuned"]
    frame = search_frame(search)
    assert list(frame.columns) == ["train.lr", "0.001", "0.03"]
    assert frame.iloc[0].tolist() == ["val rsum", "0.5", "**1.0**"]


def test_the_markdown_names_the_choice_its_cost_and_the_grid_edge():
    records = tuned_records()
    text = tuning_section(records)
    assert "`weak@tuned`: chose train.lr=0.03 (1.0 min) — **best at the largest train.lr tried (0.03): widen the grid**" in text
    assert "searched in 4 runs, 2.0 min (records under `s-search`)" in text  # two tuned variants × 2 points × 1 seed
    for r in records:
        r.costs["run_wall_s"] = 30.0
    assert "and 2.0 min for the 4 search runs of [tune]" in suite_run_time(records)
    assert "Tuning ([tune])" in render_markdown(records)


def test_the_technique_table_shows_each_tuned_runs_reference_and_chosen_point():
    frame = technique_frame(tuned_records()).set_index("variant")
    assert frame.loc["weak@tuned", "against"] == "ref@tuned" and frame.loc["weak", "against"] == "ref"
    assert frame.loc["weak@tuned", "tuned"] == "train.lr=0.03 ⚠ grid edge" and frame.loc["weak", "tuned"] == "—"
    assert frame.loc["weak@tuned", "Δ rsum"].startswith("+0.0 [+0.0, +0.0]")  # level with the tuned reference
    assert frame.loc["weak", "Δ rsum"].startswith("-75.0")


def test_html_pages_plot_the_validation_score_against_the_axis():
    records = tuned_records()
    for page in (render_html(records), render_roadmap_html(records)):
        section = page.split("Tuning: each variant's search on validation")[1]
        assert section.count("<img") >= 1 and "best at the largest train.lr tried (0.03)" in section
