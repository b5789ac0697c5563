"""Plugins: techniques registered from modules outside xmbench, named in suites like built-ins."""
import importlib
import json
import sys
import textwrap
from pathlib import Path

import pytest

from xmbench.bench.runner import run_suite
from xmbench.config import from_dict
from xmbench.errors import ConfigError
from xmbench.registry import ALL_REGISTRIES, BUILTIN, LOSSES, Choice
from xmbench.suite import load_suite

ROOT = Path(__file__).resolve().parents[1]

LOSS_PLUGIN = '''
"""A user's own loss, registered from outside xmbench."""
from dataclasses import dataclass

from xmbench.registry import LOSSES


@dataclass(frozen=True)
class ScaledOptions:
    """Options of scaled_infonce.

    Attributes:
        factor: multiplies every pair's InfoNCE part.
    """

    factor: float = 2.0


@LOSSES.register("scaled_infonce", ScaledOptions)
def scaled_infonce(inputs, options):
    """InfoNCE with every pair's part multiplied by a factor."""
    from xmbench.train.losses.infonce import infonce
    from xmbench.train.step import LossOutput

    plain = infonce(inputs, options=None)
    return LossOutput({k: v * options.factor for k, v in plain.parts.items()}, plain.per_item)
'''

TINY_SUITE = """
[suite]
name = "plug"
plugins = {plugins}
timeout_s = 120

[base.data]
n_train = 48
n_val = 16
n_test = 24
image_size = 32
audio_seconds = 0.5
n_mels = 32

[base.model]
embed_dim = 16
text = {{ size = "tiny" }}
image = {{ size = "tiny" }}
audio = {{ size = "tiny" }}

[base.train]
steps = 6
batch_size = 8
warmup_steps = 2
eval_every = 3

[base.foundation]
enabled = false

[variants.mine]
"train.loss" = {{ name = "scaled_infonce", factor = 3.0 }}
"""


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """Write plugin modules into a working folder; afterwards forget what they registered (registries are global)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # import_plugins puts "" on it
    written = []

    def write(name: str, source: str = LOSS_PLUGIN) -> Path:
        path = tmp_path / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        importlib.invalidate_caches()  # a file newer than the finder's listing of the folder
        written.append(name)
        return path

    yield write
    for name in written:
        for registry in ALL_REGISTRIES:
            registry.forget(name)
        sys.modules.pop(name, None)


def suite_file(tmp_path: Path, plugins: list[str], name: str = "plug.toml") -> Path:
    path = tmp_path / name
    path.write_text(TINY_SUITE.format(plugins=json.dumps(plugins)))
    return path


def test_a_suite_names_a_plugin_loss_with_its_options(plugins, tmp_path):
    plugins("my_losses")
    (variant,) = load_suite(suite_file(tmp_path, ["my_losses"])).variants
    loss = variant.config.train.loss
    assert loss.name == "scaled_infonce" and loss.options.factor == 3.0
    assert type(loss.options).__module__ == "my_losses"  # the plugin's own options dataclass
    assert variant.config.plugins == ["my_losses"]
    assert LOSSES.entry("scaled_infonce").origin == "my_losses" and LOSSES.entry("infonce").origin == BUILTIN


def test_a_plugin_variant_runs_in_an_isolated_process(plugins, tmp_path):
    """The child process rebuilds the job: it must import the plugin before it can read the loss's options."""
    plugins("my_losses")
    suite = load_suite(suite_file(tmp_path, ["my_losses"]))
    (record,) = run_suite(suite, tmp_path / "rec", tmp_path / "art", progress=False, timeout_s=120)
    assert record.ok, record.error
    assert record.config["plugins"] == ["my_losses"]
    assert record.config["train"]["loss"] == {"name": "scaled_infonce", "factor": 3.0}
    sources = record.env["provenance"]["plugin_sources"]
    assert list(sources) == ["my_losses"] and len(sources["my_losses"]) == 16  # the plugin's source hash


def test_a_config_tree_imports_its_plugins_before_resolving_names(plugins, tmp_path):
    """A derived run rebuilds its inputs' configs from run.json, in a process that never read the suite."""
    plugins("my_losses")
    (variant,) = load_suite(suite_file(tmp_path, ["my_losses"])).variants
    tree = variant.config.to_dict()
    LOSSES.forget("my_losses")
    sys.modules.pop("my_losses")
    rebuilt = from_dict(tree)
    assert rebuilt.train.loss.name == "scaled_infonce" and rebuilt.train.loss.options.factor == 3.0
    assert rebuilt.config_id() == variant.config.config_id()


def test_the_id_follows_the_plugin_source(plugins, tmp_path):
    source = plugins("my_losses")
    path = suite_file(tmp_path, ["my_losses"])
    first = load_suite(path).variants[0].variant_id
    assert load_suite(path).variants[0].variant_id == first  # same source, same id
    source.write_text(source.read_text().replace("factor: float = 2.0", "factor: float = 2.5"))
    changed = load_suite(path).variants[0].variant_id
    assert changed != first
    source.write_text(source.read_text().replace("factor: float = 2.5", "factor: float = 2.0"))
    assert load_suite(path).variants[0].variant_id == first


def test_suites_without_plugins_keep_their_ids():
    """The committed baseline's ids: the plugins field (empty) must not enter a config id."""
    baseline = json.loads((ROOT / "baselines" / "cpu-amd-epyc-2c" / "smoke.json").read_text())
    ids = {r["variant"]: r["variant_id"] for r in baseline["records"]}
    suite = load_suite(ROOT / "suites" / "smoke.toml")
    assert {v.name: v.variant_id for v in suite.variants} == ids
    assert all(v.config.plugins == [] for v in suite.variants)


def test_an_unimportable_plugin_names_the_file_the_key_and_the_module(plugins, tmp_path):
    path = suite_file(tmp_path, ["no_such_plugin_module"])
    with pytest.raises(ConfigError) as info:
        load_suite(path)
    assert str(info.value).startswith(f"{path}: suite.plugins: cannot import plugin module 'no_such_plugin_module': "
                                      f"ModuleNotFoundError")


def test_a_plugin_failing_midway_leaves_nothing_registered(plugins, tmp_path):
    plugins("half_done", 'from xmbench.registry import LOSSES\n\n'
                         '@LOSSES.register("half_loss")\ndef half(inputs, options):\n    """Half."""\n\n'
                         'raise RuntimeError("broken on purpose")\n')
    with pytest.raises(ConfigError, match=r"suite\.plugins: cannot import plugin module 'half_done': "
                                          r"RuntimeError: broken on purpose"):
        load_suite(suite_file(tmp_path, ["half_done"]))
    assert "half_loss" not in LOSSES


def test_a_plugin_reusing_a_name_names_the_kind_the_name_and_both_origins(plugins, tmp_path):
    plugins("shadows_infonce", 'from xmbench.registry import LOSSES\n\n'
                               '@LOSSES.register("infonce")\ndef mine(inputs, options):\n    """Mine."""\n')
    path = suite_file(tmp_path, ["shadows_infonce"])
    with pytest.raises(ConfigError) as info:
        load_suite(path)
    assert str(info.value) == (f"{path}: suite.plugins: plugin module 'shadows_infonce': loss 'infonce' is registered "
                               f"twice: first by built-in xmbench.train.losses.infonce, again by plugin shadows_infonce; "
                               f"register it under another name")
    plugins("my_losses")
    plugins("copies_mine", LOSS_PLUGIN.replace("A user's own loss", "Another user's copy"))
    with pytest.raises(ConfigError, match=r"loss 'scaled_infonce' is registered twice: first by plugin my_losses, "
                                          r"again by plugin copies_mine"):
        load_suite(suite_file(tmp_path, ["my_losses", "copies_mine"]))
    assert LOSSES.entry("scaled_infonce").origin == "my_losses"  # the first one stays


@pytest.mark.parametrize("text, message", [
    ('[suite]\nplugins = "my_losses"\n', r"suite\.plugins: expected a list of module names"),
    ('[base]\nplugins = ["my_losses"]\n', r"base\.plugins: name plugin modules in \[suite\] plugins"),
    ('[variants.x]\nplugins = ["my_losses"]\n', r"variants\.x\.plugins: name plugin modules in \[suite\] plugins"),
])
def test_plugins_are_named_once_for_the_suite(plugins, tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_suite(path)


def test_an_included_suites_plugins_join_the_including_suite(plugins, tmp_path):
    plugins("my_losses")
    (tmp_path / "day.toml").write_text('[suite]\nplugins = ["my_losses"]\n[variants.mine]\n"train.loss" = "scaled_infonce"\n')
    (tmp_path / "all.toml").write_text('[suite]\ninclude = ["day.toml"]\n')
    (variant,) = load_suite(tmp_path / "all.toml").variants
    assert variant.config.plugins == ["my_losses"] and variant.config.train.loss == Choice(
        "scaled_infonce", LOSSES.entry("scaled_infonce").options())
