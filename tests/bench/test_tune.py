"""A tuned suite's run: the search sees only train and val, the choice is the argmax of the val scores,
the tuned records carry the search, a finished search is not redone, and an unchanged choice is the untuned run."""
import copy
from pathlib import Path

import pytest

from tests.conftest import TINY_BASE
from xmbench.bench import runner, stages
from xmbench.bench.record import read_records
from xmbench.bench.runner import run_suite
from xmbench.suite import parse_suite
from xmbench.tuning import score

GRID = [3e-3, 3e-2]  # TINY_BASE's own lr first: when it wins, the tuned run is the untuned one


def tuned_suite(**tune):
    return parse_suite({"suite": {"name": "t", "seeds": [0, 1], "reference": "lora"}, "base": copy.deepcopy(TINY_BASE),
                        "variants": {"lora": {}, "ia3": {"model.*.adapter": "ia3"}},
                        "tune": {"train.lr": GRID, "variants": ["lora", "ia3"], "untuned": True, **tune}})


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory):
    """The suite run once, with every split each run loaded, by the suite it ran in."""
    folder = tmp_path_factory.mktemp("tune")
    loaded: list[tuple[str, str]] = []
    patch = pytest.MonkeyPatch()
    current = {}
    original_run, original_load = runner.run_variant, stages.load_split

    def run_variant(suite, *args, **kwargs):
        current["suite"] = suite
        return original_run(suite, *args, **kwargs)

    def load_split(config, split):
        loaded.append((current["suite"], split))
        return original_load(config, split)

    patch.setattr(runner, "run_variant", run_variant)
    patch.setattr(stages, "load_split", load_split)
    try:
        records = run_suite(tuned_suite(), folder / "rec", folder / "art", progress=False, isolate=False)
    finally:
        patch.undo()
    return folder, records, loaded


def test_the_search_never_evaluates_the_test_split(tuned_run):
    _, _, loaded = tuned_run
    assert {split for suite, split in loaded if suite == "t-search"} == {"train", "val"}
    assert "test" in {split for suite, split in loaded if suite == "t"}


def test_the_choice_is_the_best_val_score_and_every_tuned_record_carries_its_search(tuned_run):
    folder, records, _ = tuned_run
    search = read_records(folder / "rec", "t-search")
    assert len(search) == 4 and all(r.config["eval"]["split"] == "val" for r in search)
    for name in ("lora", "ia3"):
        val = {lr: score(r.metrics, "rsum") for lr in GRID for r in search if r.variant == f"{name}[train.lr={lr}]"}
        best = max(GRID, key=lambda lr: val[lr])  # brute force over the search records
        tuned = [r for r in records if r.variant == f"{name}@tuned"]
        assert len(tuned) == 2 and all(r.ok for r in tuned)
        for record in tuned:
            assert record.tuning["chosen"] == {"train.lr": best} and record.config["train"]["lr"] == best
            assert [p["score"] for p in record.tuning["points"]] == [val[lr] for lr in GRID]
            assert record.tuning["cost_s"] == pytest.approx(sum(r.costs["run_wall_s"] for r in search
                                                               if r.variant.startswith(name + "[")))
            edge = "largest" if best == GRID[-1] else "smallest"
            assert record.tuning["edges"] == [f"best at the {edge} train.lr tried ({best:g}): widen the grid"]
    assert {r.variant: r.reference for r in records} == {"lora": "lora", "lora@tuned": "lora", "ia3": "lora",
                                                         "ia3@tuned": "lora@tuned"}
    assert all(not r.tuning for r in records if not r.variant.endswith("@tuned"))


def test_a_finished_search_is_not_redone(tuned_run):
    folder, records, _ = tuned_run
    searched = {r.variant: r.created_at for r in read_records(folder / "rec", "t-search")}
    again = run_suite(tuned_suite(), folder / "rec", folder / "art", progress=False, isolate=False)
    assert [r.created_at for r in again] == [r.created_at for r in records]
    assert {r.variant: r.created_at for r in read_records(folder / "rec", "t-search")} == searched


def test_a_choice_at_the_suites_own_setting_files_the_untuned_run_under_the_tuned_name(tuned_run):
    folder, records, _ = tuned_run
    by = {(r.variant, r.seed): r for r in records}
    assert by["lora@tuned", 0].tuning["chosen"] == {"train.lr": 3e-3}  # under these seeds: the adopted case is tested
    for name in ("lora", "ia3"):
        tuned, untuned = by[f"{name}@tuned", 0], by[name, 0]
        if tuned.tuning["chosen"] == {"train.lr": TINY_BASE["train"]["lr"]}:
            assert tuned.variant_id == untuned.variant_id and tuned.metrics == untuned.metrics
            assert tuned.created_at == untuned.created_at  # the same run, not trained again
        else:
            assert tuned.variant_id != untuned.variant_id


def test_variant_selection_searches_only_for_the_tuned_runs_asked_for():
    """`--variant` with untuned variants alone runs no search; a tuned one brings the tuned reference's search."""
    from xmbench.bench.tune import run_tuned

    raw = {"suite": {"name": "t", "reference": "lora"}, "base": copy.deepcopy(TINY_BASE),
           "variants": {"lora": {}, "ia3": {"model.*.adapter": "ia3"}, "plain": {"model.*.adapter.rank": 4}},
           "tune": {"train.lr": GRID, "variants": ["lora", "ia3"], "untuned": True}}
    suite = parse_suite(raw)
    for only, searched in ((["plain"], set()), (["ia3"], set()),  # with `untuned`, "ia3" is the untuned run
                           (["ia3@tuned"], {"lora[train.lr=0.003]", "ia3[train.lr=0.03]"})):
        calls = []

        def run(part, names, calls=calls):
            calls.append((part.name, names, {v.name for v in part.variants}))
            return []

        run_tuned(suite, run, Path("unused"), Path("unused"), only)
        search = [variants for name, _, variants in calls if name == "t-search"]
        assert (search[0] >= searched) if searched else not search, (only, calls)
        assert calls[-1][:2] == ("t", only if not searched else ["ia3@tuned", "lora@tuned"])
