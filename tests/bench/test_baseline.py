import json

import pytest

from xmbench.bench import baseline, env
from xmbench.bench.record import Record
from xmbench.errors import XmbenchError


@pytest.fixture
def clean_git(monkeypatch):
    monkeypatch.setattr(env, "git_state", lambda: {"commit": "abc123", "dirty": False})


def records():
    return [Record(suite="s", variant="v", variant_id="id", seed=0, status="ok", config={})]


def test_accept_then_load(tmp_path, clean_git):
    path = baseline.accept(records(), "s", tmp_path, machine="box")
    assert path == tmp_path / "box" / "s.json"
    loaded, header = baseline.load("s", tmp_path, machine="box")
    assert loaded == records() and header["commit"] == "abc123" and header["machine_class"] == "box"


def test_accept_refuses_a_dirty_tree_unless_forced(tmp_path, monkeypatch):
    monkeypatch.setattr(env, "git_state", lambda: {"commit": "abc123", "dirty": True})
    with pytest.raises(XmbenchError, match="uncommitted changes"):
        baseline.accept(records(), "s", tmp_path, machine="box")
    assert baseline.accept(records(), "s", tmp_path, machine="box", force=True).exists()


def test_missing_baseline_says_how_to_make_one(tmp_path, clean_git):
    baseline.accept(records(), "s", tmp_path, machine="other")
    with pytest.raises(XmbenchError, match=r"no baseline for suite 's' on machine class 'box'.*other machine "
                                           r"classes: other.*xmbench baseline accept"):
        baseline.load("s", tmp_path, machine="box")


def test_foreign_machine_stale_schema_and_corrupt_files(tmp_path, clean_git):
    path = baseline.accept(records(), "s", tmp_path, machine="box")
    payload = json.loads(path.read_text())
    path.write_text(json.dumps({**payload, "machine_class": "gpu"}))
    with pytest.raises(XmbenchError, match="measured on machine class 'gpu'"):
        baseline.load("s", tmp_path, machine="box")
    path.write_text(json.dumps({**payload, "schema_version": 0}))
    with pytest.raises(XmbenchError, match="schema 0 differs"):
        baseline.load("s", tmp_path, machine="box")
    path.write_text("{not json")
    with pytest.raises(XmbenchError, match=rf"{path}: corrupt baseline file"):
        baseline.load("s", tmp_path, machine="box")


def test_machine_class_is_derived_and_overridable(monkeypatch):
    monkeypatch.delenv("XMBENCH_MACHINE_CLASS", raising=False)
    derived = baseline.machine_class()
    assert derived and derived == derived.lower() and " " not in derived
    monkeypatch.setenv("XMBENCH_MACHINE_CLASS", "ci-runner")
    assert baseline.machine_class() == "ci-runner"
