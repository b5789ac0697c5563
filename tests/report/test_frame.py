import pytest

from xmbench import load_records
from xmbench.bench.record import Record, write_record
from xmbench.errors import XmbenchError


def test_load_records_of_a_missing_folder_or_suite_is_an_error(tmp_path):
    with pytest.raises(XmbenchError, match="no records folder here"):
        load_records(tmp_path / "nowhere")
    write_record(Record(suite="s", variant="a", variant_id="x", seed=0, status="failed", config={}, error="E: e"), tmp_path)
    assert list(load_records(tmp_path).variant) == ["a"]
    with pytest.raises(XmbenchError, match="no records of suite 'other'"):
        load_records(tmp_path, "other")
