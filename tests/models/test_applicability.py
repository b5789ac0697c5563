"""What an opaque `model.factory` model takes: keys it can never take are refused by validation, keys needing a
capability it lacks by preflight, everything else runs; the README's table is the code's."""
import dataclasses
import typing
from pathlib import Path

import pytest

from tests.conftest import TINY_BASE
from tests.test_cli import ROOT, xmbench
from xmbench.bench.preflight import check_model
from xmbench.config import MODALITIES, RunConfig, resolve
from xmbench.errors import ConfigError
from xmbench.models import applicability
from xmbench.registry import CALLBACKS, REGULARIZERS, TRANSFORMS, Choice

ECHO = "tests.models.test_model:make_echo"  # an nn.Module with one Linear: no towers, heads or components
WHERE = "s.toml: variant 'v'"


def factory(**overrides) -> RunConfig:
    return resolve({"model": {"factory": ECHO}}, overrides)


def refusal(key: str, reason: str) -> str:
    return (f"{key}: {reason}; model.factory = '{ECHO}' is an opaque model, so it would be measured as if applied. "
            f"Remove the key, or {applicability.towers_hint()}")


def refused(**overrides) -> str:
    with pytest.raises(ConfigError) as caught:
        factory(**overrides)
    return str(caught.value)


def test_an_adapter_is_refused_by_name():
    assert refused(**{"model.image.adapter.rank": 4}) == refusal(
        "model.image.adapter", "an adapter is applied to the reference model's tower backbones")


def test_a_head_is_refused_by_name():
    assert refused(**{"model.head": "mlp"}) == refusal("model.head", "a projection head is built on the reference "
                                                                     "model's towers")
    assert refused(**{"model.audio.head": "mlp"}) == refusal(
        "model.audio.head", "this tower's own projection head is built on the reference model's tower")


def test_fusion_is_refused_by_name():
    assert refused(**{"model.fusion": "cross_attention"}) == refusal(
        "model.fusion", "a fusion re-ranker wraps the reference model (its embeddings and its towers' outputs)")


@pytest.mark.parametrize("key, value", [("model.embed_dim", 16), ("model.temperature", "fixed"),
                                        ("model.pretrained_projection", False), ("model.text.size", "tiny"),
                                        ("model.image.dropout", 0.1), ("model.audio.arch", "vit"),
                                        ("train.precision", "autocast"), ("foundation.steps", 3)])
def test_every_key_only_the_reference_reads_is_refused(key, value):
    assert refused(**{key: value}) == refusal(key, applicability.row_of(key).reason)


def test_every_refused_key_is_named_not_only_the_first():
    message = refused(**{"model.embed_dim": 16, "model.*.size": "tiny", "model.text.adapter": "ia3"})
    assert message.startswith("model.embed_dim: ")
    assert message.endswith("(also set, and never applied to it: model.text.size, model.text.adapter, "
                            "model.image.size, model.audio.size)")


def test_per_modality_tower_defaults_are_not_set():
    config = factory(**{"model.text.arch": "minilm", "model.image.arch": "vit", "model.audio.arch": "ast"})
    assert [key for key, _ in applicability.set_keys(config)] == ["model.factory"]
    assert refused(**{"model.image.arch": "minilm"}).startswith("model.image.arch: it names the registered tower")


def test_a_factory_variant_of_applicable_techniques_validates_and_passes_preflight():
    config = factory(**{"data.n_train": 48, "data.image_size": 32, "data.missing": {"image": 0.2},
                        "train.loss": {"name": "supcon"}, "train.sampler": "importance", "train.lr": 3e-3,
                        "train.augment": ["gain"], "train.callbacks": ["pair_curriculum", "stability"],
                        "train.regularizers": ["decorrelation"], "train.pair_weights": {"text-image": 2.0},
                        "train.lr_scale": {"proj": 0.5}, "foundation.enabled": False, "eval.ks": [1, 5],
                        "profile.latency": True})
    assert applicability.refusals(config) == []
    assert check_model(config, MODALITIES, WHERE) == []


def test_the_reference_model_is_never_refused():
    config = resolve(TINY_BASE, {"model.head": "mlp", "model.fusion": "cross_attention", "model.image.adapter.rank": 4,
                                 "model.text.head": "linear", "train.precision": "autocast", "foundation.steps": 3,
                                 "train.callbacks": ["unfreeze_top"], "transforms": ["merge"], "train.layer_decay": 0.8})
    assert applicability.refusals(config) == [] and applicability.capability_keys(config) == []


def tiny_reference(config):
    """A factory that builds the tiny reference model itself: it has every capability, whatever the config says."""
    from xmbench.models.reference import build_reference

    return build_reference(resolve(TINY_BASE), MODALITIES)


NEEDS = {"train.callbacks": ["unfreeze_top", {"name": "progressive_unfreeze", "towers": ["image"]}],
         "train.lr_scale": {"tower/*": 0.5}, "train.layer_decay": 0.8, "train.feature_cache_mb": 8.0,
         "train.regularizers": ["orthogonality"], "transforms": ["merge", "quantize"]}


def test_keys_needing_a_capability_are_refused_by_preflight_when_the_model_lacks_it():
    problems = check_model(factory(**NEEDS), MODALITIES, WHERE)
    assert [p.where for p in problems] == [f"{WHERE}: {key}" for key in (
        "train.lr_scale", "train.layer_decay", "train.regularizers[orthogonality]", "train.callbacks[unfreeze_top]",
        "train.callbacks[progressive_unfreeze]", "train.feature_cache_mb", "transforms[merge]", "transforms[quantize]")]
    unfreeze = problems[3]
    assert unfreeze.what == ("it unfreezes the top transformer layers of the model's towers; it needs `tower/<m>` "
                             "components (`component_of`) whose parameter names hold `.layer.N.` or `.layers.N.`, "
                             f"which model.factory = '{ECHO}' lacks (its parameters' components: proj)")
    assert unfreeze.fix.startswith("remove the key, or give the model `tower/<m>` components")
    assert problems[0].what.endswith("lacks ('tower/*' matches none of its parameters' components: proj)")
    assert problems[6].what == ("it folds low-rank adapters into their base weights (without any it changes nothing); it "
                                "needs peft (or xmbench's gated LoRA) adapter layers among its modules, which "
                                f"model.factory = '{ECHO}' lacks (EchoModel holds none)")


def test_a_factory_model_that_has_the_capabilities_takes_those_keys():
    config = resolve({"model": {"factory": "tests.models.test_applicability:tiny_reference"}, "data": TINY_BASE["data"]},
                     NEEDS)
    assert check_model(config, MODALITIES, WHERE) == []


def leaf_keys(section: type, path: str = "") -> list[str]:
    """Every leaf key of a config section; an optional section (model.pretrained) by its own keys."""
    hints = typing.get_type_hints(section)
    keys = []
    for f in dataclasses.fields(section):
        inner = next((t for t in (hints[f.name], *typing.get_args(hints[f.name]))
                      if dataclasses.is_dataclass(t) and t is not Choice), None)
        keys += leaf_keys(inner, f"{path}{f.name}.") if inner else [f"{path}{f.name}"]
    return keys


def test_every_key_and_every_listed_technique_has_a_row():
    missing = [key for key in leaf_keys(RunConfig)
               if key not in applicability.TECHNIQUE_LISTS and applicability.row_of(key) is None]
    for registry, key in ((CALLBACKS, "train.callbacks"), (REGULARIZERS, "train.regularizers"), (TRANSFORMS, "transforms")):
        missing += [f"{key}[{name}]" for name in registry.names() if f"{key}[{name}]" not in applicability.BY_KEY]
    assert missing == [], "classify these in xmbench/models/applicability.py (and paste its --markdown into the README)"
    assert all(row.probe is not None for row in applicability.TABLE if row.kind == "needs")


def test_the_readme_table_is_the_generated_one(capsys):
    assert applicability.main(["--markdown"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == applicability.markdown()
    readme = (ROOT / "README.md").read_text()
    assert "### Which techniques apply to an opaque `model.factory` model" in readme
    assert printed in readme, "paste `python -m xmbench.models.applicability --markdown` into the README"


def test_validate_refuses_a_factory_suite_naming_the_file_the_variant_and_the_key(tmp_path: Path):
    path = tmp_path / "mine.toml"
    path.write_text(f'[base.model]\nfactory = "{ECHO}"\n[variants.ok]\n[variants.adapted]\n'
                    '"model.image.adapter.rank" = 4\n')
    result = xmbench("validate", path)
    assert result.returncode == 2
    assert f"xmbench: error: {path}: variant 'adapted': model.image.adapter: an adapter is applied" in result.stderr
    assert "nothing was run or written" in result.stderr and "Traceback" not in result.stderr
