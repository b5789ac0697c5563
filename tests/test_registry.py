import pytest

from xmbench.errors import UnknownNameError
from xmbench.registry import LOSSES, Registry, load_builtins


def test_duplicate_registration_is_refused():
    registry = Registry("thing", "x.thing")
    registry.register("a")(lambda: 1)
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("a")(lambda: 2)


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
