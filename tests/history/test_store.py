"""Entries: append-only, exclusive atomic create, clear errors for foreign or corrupt files."""
import json

import pytest

from xmbench.bench.record import Record
from xmbench.errors import XmbenchError
from xmbench.history import store


def record(seed=0, status="ok"):
    ranks = {"first_rank": [1, 3, 2], "ap": [1.0, 0.33, 0.5]}
    return Record("s", "lora r8", "id", seed, status, {}, metrics={"t2i": {"R@1": 0.5, "mAP": 0.6}, "rsum": 100.0},
                  costs={"trainable_params": 10, "peak_rss_mb": 3.0}, per_query={"t2i": ranks},
                  timings={"query_latency_s": {"samples": [0.1, 0.2, 0.3]}}, error=None if status == "ok" else "boom")


def test_an_entry_is_compact_and_filed_once(tmp_path):
    commit = store.Commit("abc123", "2024-01-01T00:00:00+00:00", "subject")
    entry, = store.make_entries([record(1), record(0), record(2, "failed")], commit, "box", dirty=False)
    assert entry.seeds == [0, 1, 2] and entry.runs[2] == {"seed": 2, "status": "failed", "error": "boom"}
    assert entry.runs[0]["costs"] == {"trainable_params": 10}  # exact costs only; peak RSS is not compared
    assert set(entry.runs[0]["timings"]["query_latency_s"]) == {"p10", "p25", "p50", "p75", "p90", "n"}
    path = store.file_entry(tmp_path, entry)
    assert path == tmp_path / "box" / "s" / "abc123" / "lora_r8.json"
    assert store.file_entry(tmp_path, entry) is None  # a second writer is refused, the first kept
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary left behind
    assert store.read_entries(tmp_path, "box", "s")[0].runs == entry.runs


def test_dirty_entries_get_their_own_names(tmp_path):
    commit = store.Commit("abc123", "2024-01-01T00:00:00+00:00", "subject")
    entry, = store.make_entries([record()], commit, "box", dirty=True)
    first, second = store.file_entry(tmp_path, entry), store.file_entry(tmp_path, entry)
    assert first != second and ".dirty-" in first.name
    assert store.clean_entry(tmp_path, "box", "s", "abc123", "lora r8") is None


def test_corrupt_and_foreign_files_are_named(tmp_path):
    folder = tmp_path / "box" / "s" / "abc"
    folder.mkdir(parents=True)
    (folder / "a.json").write_text("{not json")
    with pytest.raises(XmbenchError, match=r"a\.json: not a readable history entry"):
        store.read_entries(tmp_path, "box", "s")
    (folder / "a.json").write_text(json.dumps({"kind": "other"}))
    with pytest.raises(XmbenchError, match=r"a\.json: not an xmbench history entry"):
        store.read_entries(tmp_path, "box", "s")


def test_unknown_revision_is_named(tmp_path):
    with pytest.raises(XmbenchError, match="unknown revision 'nope'"):
        store.commit_info(tmp_path, "nope")
