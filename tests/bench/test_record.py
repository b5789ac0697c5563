import gzip
import json

import pytest

from xmbench.bench.record import SCHEMA_VERSION, Record, read_record, read_records, write_json_atomic, write_record
from xmbench.errors import XmbenchError


def make(variant="a[train.lr=0.1]", seed=0):
    return Record(suite="s", variant=variant, variant_id="abc", seed=seed, status="ok", config={"x": 1},
                  metrics={"t2i": {"R@1": 0.5}})


def test_write_then_read_round_trips(tmp_path):
    path = write_record(make(), tmp_path)
    assert path == tmp_path / "s" / "a_train.lr_0.1__seed0.json"
    assert read_record(path) == make().__class__(**json.loads(path.read_text()))
    assert read_records(tmp_path)[0].metrics == {"t2i": {"R@1": 0.5}}
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_gzipped_records_are_read_beside_plain_ones(tmp_path):
    plain = write_record(make(seed=0), tmp_path)
    archived = write_record(make(seed=1), tmp_path)
    archived.with_suffix(".json.gz").write_bytes(gzip.compress(archived.read_bytes()))
    archived.unlink()
    assert [r.seed for r in read_records(tmp_path, "s")] == [0, 1]
    assert read_record(plain.parent / "a_train.lr_0.1__seed1.json.gz") == make(seed=1)
    truncated = plain.parent / "cut.json.gz"
    truncated.write_bytes(gzip.compress(plain.read_bytes())[:40])
    with pytest.raises(XmbenchError, match=rf"{truncated}: not a readable record"):
        read_record(truncated)


def test_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "r.json"
    write_json_atomic(path, {"v": 1})
    with pytest.raises(ValueError):
        write_json_atomic(path, {"v": float("nan")})  # NaN is not JSON: refused before the rename
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_corrupt_and_foreign_records_are_named(tmp_path):
    bad = tmp_path / "s" / "bad.json"
    bad.parent.mkdir()
    bad.write_text("{half")
    with pytest.raises(XmbenchError, match=rf"{bad}: not a readable record"):
        read_records(tmp_path)
    bad.write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(XmbenchError, match="record schema"):
        read_record(bad)
    bad.write_text("[]")
    with pytest.raises(XmbenchError, match="not an xmbench record"):
        read_record(bad)
