import importlib
import sys
from importlib.metadata import EntryPoint

import pytest

from xmbench.errors import ConfigError, DuplicateNameError, UnknownNameError
from xmbench.registry import ALL_REGISTRIES, BUILTIN, HEADS, LOSSES, Registry, load_builtins, load_entry_point


def test_duplicate_registration_is_refused():
    registry = Registry("thing", "x.thing")
    registry.register("a")(lambda: 1)
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("a")(lambda: 2)


def test_a_duplicate_names_the_kind_the_name_and_both_origins():
    load_builtins()

    def infonce(inputs, options):
        """Shadows the built-in."""

    with pytest.raises(DuplicateNameError) as info:
        LOSSES.register("infonce")(infonce)
    assert str(info.value) == ("loss 'infonce' is registered twice: first by built-in xmbench.train.losses.infonce, "
                               "again by plugin tests.test_registry; register it under another name")
    assert isinstance(info.value, ConfigError)  # the CLI prints it without a traceback
    assert LOSSES.entry("infonce").origin == BUILTIN  # the first stays


def test_entries_know_their_origin_and_a_module_can_be_forgotten():
    load_builtins()
    assert {e.origin for r in ALL_REGISTRIES for e in r.entries()} == {BUILTIN}
    registry = Registry("thing", "x.thing")
    registry.register("mine")(lambda: 1)
    assert registry.entry("mine").origin == "tests.test_registry"
    registry.forget("tests")  # a package forgets its submodules' entries too
    assert registry.names() == []


@pytest.fixture
def plugin_folder(tmp_path, monkeypatch):
    """A folder on sys.path for plugin modules; what they register is forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("ep_heads", "ep_broken"):
        for registry in ALL_REGISTRIES:
            registry.forget(name)
        sys.modules.pop(name, None)


def test_an_installed_plugin_loads_from_its_entry_point(plugin_folder):
    (plugin_folder / "ep_heads.py").write_text(
        "from xmbench.registry import HEADS\n\n@HEADS.register('ep_head')\n"
        "def ep_head(in_dim, embed_dim, options):\n    \"\"\"A plugin head.\"\"\"\n")
    importlib.invalidate_caches()
    load_entry_point(EntryPoint("heads", "ep_heads", "xmbench.plugins"))
    assert HEADS.entry("ep_head").origin == "ep_heads" and HEADS.entry("ep_head").summary == "A plugin head."


def test_an_entry_point_that_fails_names_itself(plugin_folder):
    (plugin_folder / "ep_broken.py").write_text(
        "from xmbench.registry import HEADS\n\n@HEADS.register('ep_half')\ndef half(in_dim, embed_dim, options):\n"
        "    pass\n\nraise ImportError('needs a package that is not installed')\n")
    importlib.invalidate_caches()
    with pytest.raises(ConfigError) as info:
        load_entry_point(EntryPoint("broken", "ep_broken", "xmbench.plugins"))
    assert str(info.value) == ("entry point 'broken = ep_broken' of an installed distribution (group xmbench.plugins): "
                               "cannot load it: ImportError: needs a package that is not installed")
    assert "ep_half" not in HEADS


def test_unknown_name_suggests_the_closest_and_lists_known():
    load_builtins()
    with pytest.raises(UnknownNameError) as info:
        LOSSES.get("infonc")
    message = str(info.value)
    assert "did you mean 'infonce'" in message
    assert message.startswith("train.loss: unknown loss 'infonc'")
    assert message.endswith("known: " + ", ".join(LOSSES.names()))


def test_summary_is_the_first_docstring_line():
    registry = Registry("thing", "x.thing")

    @registry.register("b")
    def build():
        """First line.

        More detail."""

    assert registry.entry("b").summary == "First line."
    assert registry.names() == ["b"]
