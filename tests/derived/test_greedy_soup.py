"""greedy_soup: ingredients best-first on validation, a bad one kept out, the choice visible; end to end in a suite."""
import pytest
import torch

from tests.derived._helpers import (
    member,
    split,
)
from xmbench.bench.runner import run_suite
from xmbench.derived._fitting import model_score
from xmbench.errors import ConfigError
from xmbench.models import capabilities
from xmbench.registry import DERIVED
from xmbench.suite import parse_suite

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py

DIRECTIONS = ["t2i", "i2t", "t2a", "a2t", "i2a", "a2i"]


def greedy(models, val, **options):
    return DERIVED.bind(DERIVED.default("greedy_soup", **options))(models, val=val, eval_config=None)


def dead(model):
    """A deliberately bad ingredient: every head maps everything to one huge vector (collapsed embeddings),
    and any soup with it is dominated by that vector: collapsed too, the worst score there is."""
    with torch.no_grad():
        for head in model.heads.values():
            head.weight.zero_()
            head.bias.copy_(1e10 * torch.linspace(1, 2, len(head.bias)))
    return model


def test_a_bad_ingredient_is_kept_out_and_the_choice_is_reported(tiny_base):
    good = member(tiny_base, seed=0, perturb=1)
    bad = dead(member(tiny_base, seed=0, perturb=2))
    twin = member(tiny_base, seed=0, perturb=1)  # the same weights as `good`: adding it leaves the soup unchanged
    val = split(tiny_base, "val")
    souped = greedy([good, bad, twin], val, metric="MRR")
    good_score, bad_score = (model_score(m, val, DIRECTIONS, "MRR", None) for m in (good, bad))
    assert bad_score < good_score
    recipe = capabilities.adapter_stats(souped)["soup"]  # the stage puts this under the record's profile.adapters
    assert recipe["order"] == [0, 2, 1]  # by validation score; the tie of good and twin keeps the inputs' order
    assert recipe["val_scores"] == pytest.approx([good_score, bad_score, good_score])
    assert recipe["tried"] == [{"input": 2, "soup_val_score": pytest.approx(good_score), "kept": True},
                               {"input": 1, "soup_val_score": pytest.approx(bad_score), "kept": False}]
    assert recipe["ingredients"] == [0, 2] and souped.soup is recipe
    good_state = good.state_dict()
    assert all(torch.equal(v, good_state[k]) for k, v in souped.state_dict().items())  # (good + twin) / 2 = good
    uniform = DERIVED.bind(DERIVED.default("uniform_soup"))([good, bad, twin], val=None, eval_config=None)
    assert model_score(uniform, val, DIRECTIONS, "MRR", None) == pytest.approx(bad_score)  # what greedy avoided


def test_greedy_soup_needs_validation_and_souppable_inputs(tiny_base):
    a = member(tiny_base, seed=0, perturb=1)
    with pytest.raises(ConfigError, match="validation split"):
        greedy([a, member(tiny_base, seed=0, perturb=2)], None)
    with pytest.raises(ConfigError, match="same foundation"):
        greedy([a, member(tiny_base, seed=1, perturb=2)], split(tiny_base, "val"))


def test_a_soup_of_two_variants_gets_a_record_with_one_members_cost(tiny_base, tmp_path):
    tiny_base["train"].update(steps=3, eval_every=0)
    tiny_base["profile"] = {"flops": False, "alignment": False}
    suite = parse_suite({"suite": {"name": "soup"}, "base": tiny_base,
                         "variants": {"a": {}, "b": {"train.lr": 1e-2}},
                         "derived": {"both": {"name": "greedy_soup", "inputs": ["a", "b"]}}})
    a, b, both = run_suite(suite, tmp_path / "rec", tmp_path / "art", progress=False, isolate=False)
    assert both.ok, both.error
    assert both.config["derived"] == {"name": "greedy_soup", "metric": "R@1", "average": "trainable"}
    assert both.costs["total_params"] == a.costs["total_params"]
    recipe = both.profile["adapters"]["soup"]
    assert recipe["method"] == "greedy" and recipe["ingredients"][0] == recipe["order"][0]
    assert len(recipe["tried"]) == 1 and set(recipe["ingredients"]) <= {0, 1}
