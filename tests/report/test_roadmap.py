"""The roadmap report: rows per technique, next steps by significant gain per unit of cost, the combination."""
import numpy as np

from tests.report.test_techniques import record
from xmbench.report.roadmap import combination, combined, ingredients, priorities, render_roadmap, technique_rows


def suite_records():
    n = 200
    half, quarter, all_hits = np.arange(n) % 2 == 0, np.arange(n) % 4 == 0, np.ones(n, bool)
    records = [record("ref", s, half, quarter) for s in (0, 1)]
    cheap = [record("cheap", s, all_hits, quarter) for s in (0, 1)]  # +50 points t2i, same costs
    costly = [record("costly", s, all_hits, half, trainable=400) for s in (0, 1)]  # more gain, 4× the parameters
    flat = [record("flat", s, half, quarter) for s in (0, 1)]
    for r in cheap:
        r.overrides = {"model.*.adapter.rank": 4}
    for r in costly:
        r.overrides = {"model.*.adapter.rank": 16, "train.lr": 0.002}
    return records + cheap + costly + flat


def test_next_steps_rank_significant_gains_by_cost_and_merge_their_overrides():
    rows = technique_rows(suite_records())
    assert [r["technique"] for r in rows] == ["cheap", "costly", "flat"]
    ranked = priorities(rows)
    assert [r["technique"] for r in ranked] == ["cheap", "costly"]  # flat is not significant: not ranked
    cheap, costly = ranked
    assert cheap["trainable_rise"] == 0 and costly["trainable_rise"] == 3.0
    assert cheap["priority"] == cheap["low"] and costly["priority"] == costly["low"] / 4
    assert combination(ranked) == {"model.*.adapter.rank": 4}  # costly sets the rank too: left out whole, lr and all


def test_a_technique_joins_the_combination_whole_or_not_at_all():
    def row(name, **overrides):
        return {"technique": name, "overrides": {k.replace("__", "."): v for k, v in overrides.items()}}

    ranked = [row("asym", model__text__adapter__rank=4), row("layernorm", model__head="layernorm_linear"),
              row("residual", model__head__name="residual_mlp", model__head__blocks=2), row("dim", model__embed_dim=256),
              row("r16", **{"model__*__adapter__rank": 16}), row("dim_big", model__embed_dim=1024, train__lr=0.002),
              row("lr", train__lr=0.002)]
    assert [r["technique"] for r in combined(ranked)] == ["asym", "layernorm", "dim", "lr"]
    assert combination(ranked) == {"model.text.adapter.rank": 4, "model.head": "layernorm_linear",
                                   "model.embed_dim": 256, "train.lr": 0.002}


def test_a_tower_s_own_head_touches_the_model_wide_head_it_overrides():
    def row(name, overrides):
        return {"technique": name, "overrides": overrides}

    ranked = [row("layernorm", {"model.head": "layernorm_linear"}),
              row("audio_residual", {"model.audio.head.name": "residual_mlp", "model.audio.head.blocks": 2}),
              row("text_rank", {"model.text.adapter.rank": 4}),  # model.text.adapter is no fallback: joins
              row("dim", {"model.embed_dim": 256})]
    assert [r["technique"] for r in combined(ranked)] == ["layernorm", "text_rank", "dim"]
    assert [r["technique"] for r in combined(ranked[1:])] == ["audio_residual", "text_rank", "dim"]


def test_a_technique_measured_against_another_base_is_ranked_not_combined():
    ragged = suite_records()
    for r in ragged:
        r.suite = "missing"
        r.overrides = {**r.overrides, "data.missing": {"image": 0.4}}  # the reference too trains on other data
    ranked = priorities(technique_rows(suite_records() + ragged))
    assert [(r["suite"], r["technique"]) for r in ranked] == [("s", "cheap"), ("missing", "cheap"), ("s", "costly"),
                                                             ("missing", "costly")]
    assert combination(ranked) == {"model.*.adapter.rank": 4}  # nothing of "missing"


def test_the_base_against_a_reference_that_changes_it_is_no_step_to_rank():
    records = suite_records()
    for r in records:
        if r.variant == "ref":  # the reference trains on other data; "cheap" is the suite's base itself
            r.overrides = {"data.missing": {"image": 0.4}}
        elif r.variant == "cheap":
            r.overrides = {}
    rows = technique_rows(records)
    assert [r["technique"] for r in rows] == ["cheap", "costly", "flat"] and rows[0]["low"] > 0  # still in the table
    assert [r["technique"] for r in priorities(rows)] == ["costly"]


def test_a_derived_run_is_ranked_but_its_inputs_are_not_settings_to_combine():
    records = suite_records()
    for r in records:
        if r.variant == "cheap":  # now an ensemble of trained variants, as the suite's derived runs record it
            r.overrides = {"inputs": ["ref", "costly"], "name": "ensemble"}
            r.config = {"derived": {"name": "ensemble"}, "inputs": ["ref", "costly"]}
    ranked = priorities(technique_rows(records))
    assert [r["technique"] for r in ranked] == ["cheap", "costly"]
    assert combination(ranked) == {"model.*.adapter.rank": 16, "train.lr": 0.002}


def test_the_report_states_its_rule_and_the_combination_to_run():
    records = suite_records()
    for r in records:
        r.costs["run_wall_s"] = 30.0
    text = render_roadmap(records)
    assert "## s (reference `ref`)\n\nRun time: 4.0 min for 8 runs, one after another" in text  # the suite's own
    assert "Rule: priority = lower 95% bound of Δ rsum" in text
    assert '"model.*.adapter.rank" = 4' in text and "[variants.combined]" in text
    assert [line for line in text.splitlines() if line.startswith("## ")] == [
        "## s (reference `ref`)", "## All techniques", "## Pareto fronts", "## Next steps"]
    assert "| s       | trainable-parameter rise | `cheap` (+150.0, +0%) → `costly` (+225.0, +300%) |" in text
    summary = text.split("## All techniques")[1].split("## ")[0]
    rows = [line for line in summary.splitlines() if line.startswith("| s ")]
    assert [row.split("|")[2].strip() for row in rows] == ["costly", "cheap", "flat"]  # by Δ rsum, largest first
    assert any("| flat" in line and "| not significant |" in line for line in rows)
    assert any("| costly" in line and "| better " in line and "+300%" in line for line in rows)


def with_combination(records):
    """suite_records with `lr` (+25 t2i) and `both`, which sets cheap's and lr's settings together."""
    n = 200
    all_hits, quarter, three_quarters = np.ones(n, bool), np.arange(n) % 4 == 0, np.arange(n) % 4 != 0
    lr = [record("lr", s, three_quarters, quarter) for s in (0, 1)]
    both = [record("both", s, all_hits, np.arange(n) % 2 == 0) for s in (0, 1)]  # cheap's t2i, +25 points i2t
    for r in lr:
        r.overrides = {"train.lr": 0.002}
    for r in both:
        r.overrides = {"model.*.adapter.rank": 4, "train.lr": 0.002}
    return records + lr + both


def test_a_combination_is_measured_against_its_best_ingredient_and_not_ranked():
    rows = technique_rows(with_combination(suite_records()))
    by_name = {r["technique"]: r for r in rows}
    both = by_name["both"]
    assert [r["technique"] for r in ingredients(both, rows)] == ["cheap", "lr"]  # costly sets another rank
    assert both["combines"] == ["cheap", "lr"] and both["best_ingredient"] == "cheap"
    assert "combines" not in by_name["costly"] and "combines" not in by_name["cheap"]
    versus = both["versus_best"]
    assert versus["delta_rsum"] == 75.0 and versus["low"] > 0  # i2t +25 points at R@1, R@5 and R@10 over cheap
    assert both["delta_rsum"] == by_name["cheap"]["delta_rsum"] + 75.0
    assert [r["technique"] for r in priorities(rows)] == ["cheap", "lr", "costly"]
    assert combination(priorities(rows)) == both["overrides"]
    text = render_roadmap(with_combination(suite_records()))
    line = next(x for x in text.split("## Combinations, measured")[1].splitlines() if x.startswith("| s "))
    assert "| both " in line and "| cheap, lr " in line and "| +75.0 [" in line
    assert "The combination to run next (measured above as `both`): `cheap`, `lr`" in text


def timed(records, latencies):
    for r, latency in zip(records, latencies):
        r.timings["query_latency_s"] = {"samples": [latency, latency * 1.1, latency * 1.2], "p50": latency * 1.1}
    return records


def test_a_latency_rise_costs_only_when_every_run_is_slower():
    n = 200
    half, all_hits = np.arange(n) % 2 == 0, np.ones(n, bool)
    seeds = (0, 1, 2)  # three processes a side: the permutation test alone could never call it
    records = (timed([record("ref", s, half, half) for s in seeds], [1.0, 1.05, 1.1])
               + timed([record("slow", s, all_hits, half) for s in seeds], [1.3, 1.35, 1.4])
               + timed([record("overlap", s, all_hits, half) for s in seeds], [1.0, 1.5, 1.6]))
    rows = {r["technique"]: r for r in technique_rows(records)}
    assert rows["slow"]["latency_worse"] and rows["slow"]["latency_rise"] == np.float64(1.35 / 1.05 - 1)
    assert not rows["overlap"]["latency_worse"] and rows["overlap"]["latency_rise"] > 0.05
    ranked = {r["technique"]: r for r in priorities(list(rows.values()))}
    assert ranked["slow"]["priority"] == ranked["slow"]["low"] / (1 + rows["slow"]["latency_rise"])
    assert ranked["overlap"]["priority"] == ranked["overlap"]["low"]  # within the machine's noise: no cost
    summary = render_roadmap(records).split("## All techniques")[1]
    assert "(n.s.)" in summary.split("| overlap")[1].splitlines()[0]
    assert "(n.s.)" not in summary.split("| slow")[1].splitlines()[0]


def test_a_latency_left_unjudged_by_contention_has_no_rise_and_no_cost():
    n = 200
    half, all_hits = np.arange(n) % 2 == 0, np.ones(n, bool)
    reference = timed([record("ref", s, half, half) for s in (0, 1, 2)], [1.0, 1.05, 1.1])
    for r in reference[:2]:
        r.costs["latency_foreign_cpu_share"] = 0.5  # other processes took half the CPUs while it was timed
    records = reference + timed([record("slow", s, all_hits, half) for s in (0, 1, 2)], [1.3, 1.35, 1.4])
    (row,) = technique_rows(records)
    assert row["latency_rise"] is None and not row["latency_worse"]
    assert [r["technique"] for r in priorities([row])] == ["slow"]
    assert "| slow" in render_roadmap(records)


def tuned_records():
    """ref and `weak` at the suite's lr, both tuned ([tune], untuned kept): the reference gains +25 points t2i at
    its best; `weak` is worse at the reference's settings (-25 t2i) and level with the tuned reference at its own."""
    n = 200
    quarter, half, three_quarters = np.arange(n) % 4 == 0, np.arange(n) % 2 == 0, np.arange(n) % 4 != 0
    runs = {"ref": (half, quarter), "weak": (quarter, quarter), "ref@tuned": (three_quarters, quarter),
            "weak@tuned": (three_quarters, quarter)}
    references = {"ref": "ref", "weak": "ref", "ref@tuned": "ref", "weak@tuned": "ref@tuned"}
    records = []
    for name, hits in runs.items():
        for seed in (0, 1):
            r = record(name, seed, *hits)
            r.reference = references[name]
            if name.endswith("@tuned"):
                lr = 0.003 if name == "ref@tuned" else 0.03
                r.overrides = {"train.lr": lr} if name == "ref@tuned" else {"model.*.adapter": "ia3", "train.lr": lr}
                r.tuning = {"axes": ["train.lr"], "split": "val", "metric": "rsum", "seeds": [0], "index": 1,
                            "chosen": {"train.lr": lr}, "chosen_score": 1.0, "cost_s": 60.0, "search_suite": "s-search",
                            "edges": [] if name == "ref@tuned" else ["best at the largest train.lr tried (0.03): widen the grid"],
                            "points": [{"values": {"train.lr": 0.001}, "score": 0.5, "scores": [0.5]},
                                       {"values": {"train.lr": lr}, "score": 1.0, "scores": [1.0]}]}
            elif name == "weak":
                r.overrides = {"model.*.adapter": "ia3"}
            records.append(r)
    return records


def test_tuned_techniques_show_both_verdicts_and_the_changes_are_counted():
    text = render_roadmap(tuned_records())
    section = text.split("## Each technique at its own best ([tune])")[1].split("\n## ")[0]
    assert "**1 of 1 verdicts changed sign or significance**: `weak`." in section
    rows = [line for line in section.splitlines() if line.startswith("| s ")]
    weak = next(line for line in rows if "| weak " in line)
    assert "train.lr=0.03 ⚠ grid edge" in weak and "-75.0 [" in weak and "] worse" in weak
    assert "| +0.0 [+0.0, +0.0] not significant" in weak and "| worse → not significant |" in weak
    assert any("ref (reference)" in line and "+75.0 [" in line for line in rows)  # the reference tuned, against itself
    assert "best at the largest train.lr tried (0.03): widen the grid" in section


def test_the_next_steps_rank_tuned_verdicts_and_start_the_combination_at_the_tuned_reference():
    rows = technique_rows(tuned_records())
    by_name = {r["technique"]: r for r in rows}
    assert by_name["weak@tuned"]["reference"] == "ref@tuned" and by_name["weak"]["reference"] == "ref"
    assert by_name["weak@tuned"]["overrides"] == {"model.*.adapter": "ia3"}  # its own lr is not a setting to combine
    assert priorities(rows) == []  # weak@tuned is level with the tuned reference; the tuned reference is no step
    from xmbench.report.roadmap import reference_point

    assert reference_point(rows) == {"train.lr": 0.003}
    better = dict(by_name["weak@tuned"], low=1.0, delta_rsum=2.0, priority=1.0)
    assert combination([better], reference_point(rows)) == {"train.lr": 0.003, "model.*.adapter": "ia3"}


def test_a_combination_at_the_tuned_references_point_is_measured_as_one():
    """The next steps start a combination at the tuned reference's lr: a variant set that way combines its
    techniques (the lr is the start, not a technique of its own); at another lr it is no combination of them."""
    n = 200
    records = tuned_records()
    for name, lr in (("both", 0.003), ("both_elsewhere", 0.01)):
        for seed in (0, 1):
            r = record(name, seed, np.arange(n) % 4 != 0, np.arange(n) % 4 == 0)
            r.overrides = {"train.lr": lr, "model.*.adapter": "ia3", "model.*.adapter.rank": 4}
            records.append(r)
    for seed in (0, 1):
        r = record("rank4", seed, np.arange(n) % 2 == 0, np.arange(n) % 4 == 0)
        r.overrides = {"model.*.adapter.rank": 4}
        records.append(r)
    by_name = {r["technique"]: r for r in technique_rows(records)}
    assert by_name["both"]["combines"] == ["weak", "weak@tuned", "rank4"]
    assert "combines" not in by_name["both_elsewhere"]
    assert ingredients(by_name["both"], list(by_name.values())) == []  # without the start, the lr is no one's setting
