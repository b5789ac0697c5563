import re

from xmbench.bench.record import Record
from xmbench.report.html import render_html, render_roadmap_html


def record(variant, seed, r1, latency, rss):
    metrics = {d: {"R@1": r1, "R@5": r1, "R@10": r1, "mAP": r1} for d in ("t2i", "i2t")}
    metrics["rsum"] = 300 * r1
    curve = [{"step": s, "train_loss": 3 - s / 10, "val_loss": 3.1 - s / 12, "val_r1": {"t2i": r1, "i2t": r1}}
             for s in (5, 10)]
    return Record(suite="s", variant=variant, variant_id=variant, seed=seed, status="ok", config={}, metrics=metrics,
                  costs={"peak_rss_mb": rss, "trainable_params": 10}, curve=curve,
                  timings={"query_latency_s": {"p50": latency, "samples": [latency]}})


def test_page_is_self_contained_with_every_plot():
    records = [record("a", 0, 0.4, 0.002, 900), record("a", 1, 0.5, 0.002, 910), record("b", 0, 0.6, 0.004, 950)]
    page = render_html(records, "| mark | x |")
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert [alt for alt, _ in images] == ["learning curves", "R@1 per direction", "pareto latency", "pareto memory",
                                          "pareto trainable parameters"]
    assert all(len(data) > 1000 for _, data in images)
    assert "<table" in page and "http" not in page.replace("http-equiv", "")  # nothing fetched from outside
    assert "Against the baseline" in page


def test_step_notes_are_a_table_of_the_page():
    noted = record("a", 0, 0.4, 0.002, 900)
    noted.steps = [{"step": 0, "notes": {"stability/overflow_steps": 0}}, {"step": 1, "notes": {"stability/overflow_steps": 2}}]
    page = render_html([noted, record("b", 0, 0.6, 0.004, 950)])
    assert "<h3>Step notes</h3>" in page and "stability/overflow_steps" in page
    assert "<h3>Step notes</h3>" not in render_html([record("b", 0, 0.6, 0.004, 950)])


def failed(variant, seed, error):
    return Record(suite="s", variant=variant, variant_id=variant, seed=seed, status="failed", config={},
                  error=error)


def test_a_suite_of_failed_runs_renders_its_failures():
    long = "DataError: " + "x" * 400
    page = render_html([failed("a", 0, "ConfigError: model.factory: cannot import 'nope:make'"), failed("b", 0, long)])
    assert "Failed runs (2 of 2)" in page and "cannot import" in page and "Every run of this suite failed" in page
    assert "<img" not in page


def test_layout_keeps_cells_whole_and_long_text_wrapped():
    records = [record("a", 0, 0.4, 0.002, 900), record("a", 1, 0.5, 0.002, 910)]
    page = render_html(records, "x" * 500)
    assert "td { white-space: nowrap; }" in page and "white-space: pre-wrap" in page
    assert page.count("a Pareto front needs two or more") == 3  # one variant: a note, not a lone dot


def test_intervals_of_percentages_stay_within_0_and_100():
    from xmbench.report.plots import percent_interval

    mean, low, high = percent_interval([0.0, 10.0])  # two seeds: the t interval reaches to about -58%
    assert (mean, low) == (5.0, 0.0) and high <= 100.0
    assert percent_interval([99.0, 100.0])[2] == 100.0


def test_the_roadmap_page_has_its_sections_and_a_pareto_plot_per_cost():
    from tests.report.test_roadmap import suite_records

    page = render_roadmap_html(suite_records())
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert [alt for alt, _ in images] == ["pareto s query latency rise", "pareto s trainable-parameter rise",
                                          "pareto s peak memory Δ"]
    assert all(len(data) > 1000 for _, data in images)
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings == ["s (reference <code>ref</code>)", "All techniques", "Pareto fronts", "Next steps"]
    assert '<pre>[variants.combined]\n"model.*.adapter.rank" = 4</pre>' in page.replace("&quot;", '"')
    assert "No suite with a reference" in render_roadmap_html([record("a", 0, 0.4, 0.002, 900)])
