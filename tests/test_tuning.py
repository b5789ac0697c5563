"""[tune] parsing: the grid's runs, the selection rule's settings, and the refusals that name the key."""
import copy

import pytest

from tests.conftest import TINY_BASE
from xmbench.errors import ConfigError
from xmbench.suite import parse_suite
from xmbench.tuning import SEARCH_PROFILE, score


def raw_suite(tune, variants=None, **header):
    return {"suite": {"name": "t", "seeds": [3, 4], "reference": "lora", **header}, "base": copy.deepcopy(TINY_BASE),
            "variants": variants or {"lora": {}, "ia3": {"model.*.adapter": "ia3"}, "vera": {"model.*.adapter": "vera"}},
            "tune": tune}


def test_defaults_tune_every_variant_but_the_reference_on_val_rsum_at_the_first_seed():
    suite = parse_suite(raw_suite({"train.lr": [1e-3, 1e-2]}))
    assert [t.name for t in suite.tuning] == ["ia3", "vera"]
    ia3 = suite.tuning[0]
    assert (ia3.split, ia3.metric, ia3.seeds, ia3.untuned) == ("val", "rsum", (3,), False)
    assert ia3.points == ((1e-3,), (1e-2,)) and ia3.tuned_name == "ia3"
    assert [v.name for v in ia3.search] == ["ia3[train.lr=0.001]", "ia3[train.lr=0.01]"]
    search, final = ia3.search[1].config, ia3.finals[1].config
    assert search.eval.split == "val" and final.eval.split == "test"
    assert search.train.lr == final.train.lr == 1e-2 and final.model.text.adapter.name == "ia3"
    assert not search.profile.flops and not search.profile.alignment and search.train.eval_every == 0
    assert final.profile == suite.variant("ia3").config.profile  # the final run is the suite's, at the point
    assert final.config_id() != suite.variant("ia3").config.config_id()


def test_a_list_the_reference_a_budget_and_several_groups():
    tune = [{"train.lr": [1e-3, 3e-3], "variants": ["lora", "ia3"], "untuned": True, "seeds": [4],
             "search": {"train.steps": 3}, "metric": "t2a.R@1"},
            {"train": {"lr": [1e-2, 3e-2, 1e-1]}, "variants": ["vera"]}]
    suite = parse_suite(raw_suite(tune))
    lora, ia3, vera = suite.tuning
    assert (lora.name, lora.tuned_name, lora.seeds, lora.metric) == ("lora", "lora@tuned", (4,), "t2a.R@1")
    assert lora.search[0].config.train.steps == 3 and lora.finals[0].config.train.steps == TINY_BASE["train"]["steps"]
    assert vera.axes == ("train.lr",) and len(vera.points) == 3 and not vera.untuned


@pytest.mark.parametrize("tune, message", [
    ({"train.lr": [1e-3], "split": "test"}, r"tune\.split: 'test' is the split every verdict is computed on.*leakage"),
    ({"train.lr": [1e-3], "split": "tset"}, r"tune\.split: expected 'val'"),
    ({"variants": ["ia3"]}, r"tune: no axis to search"),
    ({"train.lr": []}, r"tune\.train\.lr: expected a non-empty list"),
    ({"train.lr": [1e-3], "variants": ["ia4"]}, r"tune\.variants: no variant 'ia4' \(did you mean 'ia3'\?\)"),
    ({"train.lr": [1e-3], "metric": "t2i.R@2"}, r"tune\.metric: expected 'rsum' or DIRECTION\.METRIC"),
    ({"train.lr": [-1.0]}, r"variant 'ia3' at \[train\.lr=-1\.0\]: train\.lr"),
    ({"train.lrr": [1e-3]}, r"train\.lrr: unknown key"),
    ({"train.lr": [1e-3], "seeds": []}, r"tune\.seeds: expected a non-empty list"),
    ([{"train.lr": [1e-3]}, {"train.lr": [1e-2], "variants": ["ia3"]}], r"ia3 tuned by more than one"),
])
def test_refusals_name_the_key(tune, message):
    with pytest.raises(ConfigError, match=message):
        parse_suite(raw_suite(tune))


def test_validate_refuses_selecting_on_the_test_split(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "leak.toml"
    path.write_text('[suite]\nname = "leak"\nreference = "a"\n[variants.a]\n[variants.b]\n"model.*.adapter" = "ia3"\n'
                    '[tune]\n"train.lr" = [1e-3, 1e-2]\nsplit = "test"\n')
    fair = tmp_path / "fair.toml"  # tiny towers: validate builds every model and encodes a batch
    fair.write_text(path.read_text().replace('split = "test"', 'split = "val"').replace(
        "[variants.a]", '[base.data]\nn_train = 48\nn_val = 16\nn_test = 24\nimage_size = 32\naudio_seconds = 0.5\n'
        'n_mels = 32\n[base.model]\nembed_dim = 16\ntext = { size = "tiny" }\nimage = { size = "tiny" }\n'
        'audio = { size = "tiny" }\n[base.train]\nbatch_size = 8\n[base.foundation]\nenabled = false\n[variants.a]'))
    done = subprocess.run([sys.executable, "-m", "xmbench.cli", "validate", str(path)], capture_output=True, text=True)
    assert done.returncode != 0
    assert "leak.toml: tune.split: 'test' is the split every verdict is computed on" in done.stderr + done.stdout
    done = subprocess.run([sys.executable, "-m", "xmbench.cli", "validate", str(fair)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "[tune]: 1 variants tuned on val, 2 search runs" in done.stdout


def test_no_validation_split_to_select_on():
    raw = raw_suite({"train.lr": [1e-3]})
    raw["base"]["data"]["n_val"] = 0
    raw["base"]["train"]["eval_every"] = 0
    with pytest.raises(ConfigError, match=r"data\.n_val = 0: there is no validation split"):
        parse_suite(raw)


def test_score_reads_rsum_or_a_directions_metric():
    metrics = {"rsum": 250.0, "t2i": {"R@1": 0.5, "mAP": 0.25}}
    assert score(metrics, "rsum") == 250.0 and score(metrics, "t2i.mAP") == 0.25 and score(metrics, "a2t.R@1") is None
    assert all(value is False for value in SEARCH_PROFILE.values())
