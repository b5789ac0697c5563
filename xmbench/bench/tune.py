"""A tuned suite's run: search → choose each variant's point on validation → run the suite there.

    search      every point of every tuned variant × the selection seeds, evaluated on the selection split
                (val), as an ordinary suite named `<suite>-search`: cached and resumable like any run, so a
                finished search is not redone
    choose      each variant's best point by the mean of the selection metric over the selection seeds
                (a point with a failed seed never wins; ties go to the earlier point of the grid)
    run         the suite with each tuned variant at its chosen point (beside the untuned one with
                `untuned = true`), its seeds on the test split, as today
    record      each tuned record carries its search: points, their scores, the choice, what it cost

The verdict's split is never seen by the choice: the search runs evaluate `split` (never "test",
which parsing refuses) and the choice reads only their records.
"""
from __future__ import annotations

import shutil
import statistics
import sys
from dataclasses import replace
from pathlib import Path

from xmbench.bench.record import Record, read_record, slug, write_record
from xmbench.suite import Suite, with_teachers
from xmbench.tuning import SEARCH_SUFFIX, TunedVariant, score


def run_tuned(suite: Suite, run, records_dir: Path, artifacts_dir: Path, only: list[str] | None) -> list[Record]:
    """Search, choose, then run the suite at the chosen points; `run(suite, names)` runs a suite without tuning."""
    # the reference's search too, when it is tuned and a tuned run is asked for: tuned runs are compared with
    # the tuned reference (`--variant` naming only untuned variants runs no search)
    tuned = [t for t in suite.tuning if not only or asked(t, only)]
    tuned += [t for t in suite.tuning if tuned and t.name == suite.reference and t not in tuned]
    found = {}
    for seeds in dict.fromkeys(t.seeds for t in tuned):  # one search suite per set of selection seeds
        group = [t for t in tuned if t.seeds == seeds]
        records = run(search_suite(suite, group, list(seeds)), None)
        found.update({t.name: selection(t, records, suite.name + SEARCH_SUFFIX) for t in group})
    final = at_best(suite, found)
    names = None if not only else list(dict.fromkeys([*only, *(t.tuned_name for t in tuned)]))
    same = [t for t in tuned if t.untuned and found[t.name]["chosen"] is not None
            and final.variant(t.name).variant_id == final.variant(t.tuned_name).variant_id]
    if same:  # the untuned runs first, then filed under the tuned names too: the same config is not trained twice
        skipped = {t.tuned_name for t in same}
        run(final, [v.name for v in final.variants if v.name not in skipped and (not names or v.name in names)])
        for t in same:
            adopt_untuned(records_dir, artifacts_dir, final, t)
    records = run(final, names)
    searches = {t.tuned_name: found[t.name] for t in tuned if found[t.name]["chosen"] is not None}
    return [with_search(r, searches.get(r.variant), records_dir) for r in records]


def asked(tuned: TunedVariant, only: list[str]) -> bool:
    """Does `--variant` ask for this variant's tuned run? With `untuned`, its own name is the untuned run."""
    return tuned.tuned_name in only or (not tuned.untuned and tuned.name in only)


def search_suite(suite: Suite, tuned: list[TunedVariant], seeds: list[int]) -> Suite:
    """The search runs as a suite of their own: no reference, no gates, the suite's time limit."""
    return Suite(name=suite.name + SEARCH_SUFFIX, path=suite.path, description=f"[tune] search of {suite.name}",
                 seeds=seeds, variants=[v for t in tuned for v in t.search], timeout_s=suite.timeout_s)


def selection(tuned: TunedVariant, records: list[Record], search_suite_name: str) -> dict:
    """The search's outcome as a record stores it: every point's score, the chosen point, its cost, a grid-edge flag."""
    points = []
    for values, variant in zip(tuned.points, tuned.search):
        runs = [r for r in records if r.variant == variant.name]
        scores = [score(r.metrics, tuned.metric) if r.ok else None for r in runs]
        failed = [r.error.splitlines()[0] for r in runs if not r.ok]
        complete = len(runs) == len(tuned.seeds) and all(s is not None for s in scores)
        points.append({"values": dict(zip(tuned.axes, values)), "scores": scores,
                       "score": statistics.fmean(scores) if complete else None,
                       "run_wall_s": sum(r.costs.get("run_wall_s") or 0.0 for r in runs),
                       "error": failed[0] if failed else None})
    scored = [i for i, p in enumerate(points) if p["score"] is not None]
    best = max(scored, key=lambda i: (points[i]["score"], -i)) if scored else None
    return {"axes": list(tuned.axes), "split": tuned.split, "metric": tuned.metric, "seeds": list(tuned.seeds),
            "points": points, "index": best, "chosen": None if best is None else points[best]["values"],
            "chosen_score": None if best is None else points[best]["score"],
            "cost_s": sum(p["run_wall_s"] for p in points), "edges": edge_flags(tuned, best),
            "search_suite": search_suite_name}


def edge_flags(tuned: TunedVariant, best: int | None) -> list[str]:
    """A choice at the end of a numeric axis may lie beyond the grid: say so, per axis."""
    if best is None:
        return []
    flags = []
    chosen = tuned.points[best]
    for i, axis in enumerate(tuned.axes):
        values = sorted({p[i] for p in tuned.points if _numeric(p[i])})
        if len(values) < 2 or not _numeric(chosen[i]):
            continue
        if chosen[i] == values[-1]:
            flags.append(f"best at the largest {axis} tried ({chosen[i]:g}): widen the grid")
        elif chosen[i] == values[0]:
            flags.append(f"best at the smallest {axis} tried ({chosen[i]:g}): widen the grid")
    return flags


def _numeric(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def at_best(suite: Suite, found: dict[str, dict]) -> Suite:
    """The suite with each tuned variant at its chosen point, compared with the tuned reference where there is one.

    A variant whose every point failed is left out of the run (its search records say why).
    """
    by_name = {t.name: t for t in suite.tuning}
    variants = []
    for variant in suite.variants:
        tuned, outcome = by_name.get(variant.name), found.get(variant.name)
        if outcome is None:
            variants.append(variant)
            continue
        if tuned.untuned:
            variants.append(variant)
        if outcome["chosen"] is None:
            _say(f"tune: every point of '{tuned.name}' failed (records under {suite.name + SEARCH_SUFFIX}): "
                 f"it does not run tuned")
            continue
        variants.append(replace(tuned.finals[outcome["index"]], name=tuned.tuned_name))
    variants = with_teachers(variants)
    ids = {v.name: v.variant_id for v in variants}
    derived = [replace(d, input_ids=tuple(ids[i] for i in d.inputs)) for d in suite.derived]  # inputs may have moved
    reference = by_name.get(suite.reference) if suite.reference in found else None
    tuned_reference = reference.tuned_name if reference and found[reference.name]["chosen"] is not None \
        else suite.reference
    references = {by_name[n].tuned_name: tuned_reference for n in found if n != suite.reference}
    if reference and reference.untuned and tuned_reference != suite.reference:
        references[tuned_reference] = suite.reference  # the reference tuned, against itself untuned
    return replace(suite, variants=variants, derived=derived, tuning=[], references=references)


def adopt_untuned(records_dir: Path, artifacts_dir: Path, suite: Suite, tuned: TunedVariant) -> None:
    """A choice that is the suite's own setting is the untuned run itself: its complete records (and
    trained artifacts) are filed under the tuned name too, instead of training the same config again."""
    untuned, final = suite.variant(tuned.name), suite.variant(tuned.tuned_name)
    for seed in suite.seeds:
        source = Path(records_dir) / suite.name / f"{slug(untuned.name)}__seed{seed}.json"
        target = source.with_name(f"{slug(final.name)}__seed{seed}.json")
        if target.exists() or not source.exists():
            continue
        record = read_record(source)
        if not record.ok or record.variant_id != final.variant_id:
            continue
        artifacts = Path(artifacts_dir) / suite.name
        if (artifacts / source.stem).exists():
            shutil.copytree(artifacts / source.stem, artifacts / target.stem, dirs_exist_ok=True)
        write_record(replace(record, variant=final.name, reference=suite.reference_for(final.name)), records_dir)


def with_search(record: Record, search: dict | None, records_dir: Path) -> Record:
    """A tuned run's record with its search attached (rewritten when a reused record carries an older one)."""
    if search is None or record.tuning == search:
        return record
    record = replace(record, tuning=search)
    write_record(record, records_dir)
    return record


def _say(message: str) -> None:
    print(f"xmbench: {message}", file=sys.stderr)

