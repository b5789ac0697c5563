import csv
import json

import numpy as np
import pytest
import soundfile

from xmbench.data.manifest import read_split, write_manifest
from xmbench.data.synthetic import make_split
from xmbench.errors import DataError

SR, SECONDS, SIZE = 16000, 0.5, 32


@pytest.fixture
def exported(tmp_path):
    splits = [make_split(name, 4, "target", image_size=SIZE, audio_seconds=SECONDS) for name in ("train", "test")]
    return write_manifest(splits, tmp_path / "set"), splits


def load(path, split="train"):
    return read_split(path, split, image_size=SIZE, sample_rate=SR, audio_seconds=SECONDS)


def test_export_round_trips_through_the_loader(exported):
    manifest, (train, _) = exported
    loaded = load(manifest)
    assert loaded.ids == train.ids and loaded.captions == train.captions
    assert np.array_equal(loaded.images, train.images)  # PNG is lossless
    assert np.abs(loaded.audio - train.audio).max() <= 1.5 / 32768  # 16-bit PCM


def test_audio_at_another_rate_is_resampled(exported):
    manifest, (train, _) = exported
    row = json.loads(manifest.read_text().splitlines()[0])
    soundfile.write(manifest.parent / row["audio"], train.audio[0][::2], SR // 2, subtype="FLOAT")
    loaded = load(manifest)
    assert loaded.audio.shape == (4, int(SR * SECONDS))


def _rewrite_first(manifest, **changes):
    lines = manifest.read_text().splitlines()
    row = json.loads(lines[0])
    row.update(changes)
    lines[0] = json.dumps(row)
    manifest.write_text("\n".join(lines) + "\n")


def test_missing_image_names_the_row(exported):
    manifest, _ = exported
    _rewrite_first(manifest, image="images/nowhere.png")
    with pytest.raises(DataError, match=rf"{manifest}:1: image file not found"):
        load(manifest)


def test_corrupt_audio_names_the_row(exported):
    manifest, _ = exported
    row = json.loads(manifest.read_text().splitlines()[1])
    (manifest.parent / row["audio"]).write_bytes(b"not a wave file")
    with pytest.raises(DataError, match=rf"{manifest}:2: corrupt audio file"):
        load(manifest)


def test_corrupt_image_names_the_row(exported):
    manifest, _ = exported
    row = json.loads(manifest.read_text().splitlines()[0])
    (manifest.parent / row["image"]).write_bytes(b"\x89PNG garbage")
    with pytest.raises(DataError, match=rf"{manifest}:1: corrupt image file"):
        load(manifest)


def test_empty_caption_names_the_row(exported):
    manifest, _ = exported
    _rewrite_first(manifest, captions=["fine", "  "])
    with pytest.raises(DataError, match=rf"{manifest}:1: item '.*' has an empty or missing caption"):
        load(manifest)


def test_malformed_line_and_missing_manifest(tmp_path, exported):
    manifest, _ = exported
    manifest.write_text(manifest.read_text() + "{oops\n")
    with pytest.raises(DataError, match=r":9: malformed JSON"):
        load(manifest)
    with pytest.raises(DataError, match="manifest file not found"):
        load(tmp_path / "none.jsonl")


def test_csv_manifest_without_images(tmp_path, exported):
    manifest, (train, _) = exported
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    csv_path = manifest.parent / "audio_only.csv"
    with csv_path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "split", "captions", "audio"])
        writer.writerows([r["id"], r["split"], " | ".join(r["captions"]), r["audio"]] for r in rows)
    loaded = load(csv_path)
    assert loaded.images is None and loaded.modalities == ("text", "audio")
    assert loaded.captions == train.captions
