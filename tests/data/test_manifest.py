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
    with pytest.raises(DataError, match=rf"{manifest}:1: caption 2 of item '.*' is empty or not a string"):
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


def test_a_16_bit_png_is_scaled_not_clipped(exported):
    from PIL import Image

    manifest, _ = exported
    row = json.loads(manifest.read_text().splitlines()[0])
    ramp = np.linspace(0, 65535, SIZE * SIZE).reshape(SIZE, SIZE).astype(np.uint16)
    Image.fromarray(ramp).save(manifest.parent / row["image"])
    image = load(manifest).images[0]
    expected = np.round(ramp / 257.0)
    assert abs(image.mean() - expected.mean()) < 1.5 and image.min() <= 1 and image.max() >= 250  # not white


def test_transparency_is_composited_on_white(exported):
    from PIL import Image

    manifest, _ = exported
    row = json.loads(manifest.read_text().splitlines()[0])
    Image.new("RGBA", (SIZE, SIZE), (255, 0, 0, 0)).save(manifest.parent / row["image"])  # fully transparent red
    assert (load(manifest).images[0] == 255).all()


def test_a_truncated_wav_is_an_error_not_padding(exported):
    manifest, _ = exported
    row = json.loads(manifest.read_text().splitlines()[2])
    path = manifest.parent / row["audio"]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=rf"{manifest}:3: audio file .* is truncated: its header declares 0.500 s"):
        load(manifest)


@pytest.mark.parametrize("change, message", [
    ({"id": None}, r":2: id '.*' is used already at line 1 \(it would count as an extra positive"),
    ({"split": "tset"}, r":2: split 'tset' is not one of train, val, test \(did you mean 'test'\?\)"),
    ({"captions": "a red circle"}, r":2: captions of item '.*' is a string, not a list"),
])
def test_rows_are_never_accepted_silently(exported, change, message):
    manifest, _ = exported
    lines = manifest.read_text().splitlines()
    first, second = json.loads(lines[0]), json.loads(lines[1])
    second.update({k: (first["id"] if k == "id" else v) for k, v in change.items()})
    lines[1] = json.dumps(second)
    manifest.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=message):
        load(manifest)


def test_an_id_in_two_splits_is_a_leak(exported):
    manifest, _ = exported
    lines = manifest.read_text().splitlines()
    test_row = json.loads(lines[-1])
    test_row["id"] = json.loads(lines[0])["id"]
    lines[-1] = json.dumps(test_row)
    manifest.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"split train there, test here: test items would leak into training"):
        load(manifest)


def test_check_manifest_lists_every_problem(exported):
    from xmbench.data.manifest import check_manifest

    manifest, _ = exported
    lines = manifest.read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    rows[1]["split"] = "tset"
    rows[2]["captions"] = "just text"
    (manifest.parent / rows[3]["image"]).write_bytes(b"not an image")
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n{oops\n")
    problems = [str(p) for p in check_manifest(manifest, image_size=SIZE, sample_rate=SR, audio_seconds=SECONDS).problems]
    assert len(problems) == 4
    assert any(":2: split 'tset'" in p for p in problems) and any(":3: captions of item" in p for p in problems)
    assert any(":4: corrupt image file" in p for p in problems) and any(":9: malformed JSON" in p for p in problems)


def test_a_training_row_may_lack_a_modality_a_test_row_may_not(tmp_path):
    from xmbench.data.missing import drop_modalities

    train = drop_modalities(make_split("train", 4, "target", image_size=SIZE, audio_seconds=SECONDS), {"image": 0.5}, 0)
    test = make_split("test", 4, "target", image_size=SIZE, audio_seconds=SECONDS)
    manifest = write_manifest([train, test], tmp_path / "ragged")
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert sum("image" not in r for r in rows) == 2  # the exporter leaves out what an item lacks
    loaded = load(manifest)
    assert loaded.present["image"].tolist() == train.present["image"].tolist() and loaded.present["audio"].all()
    assert (loaded.images[~loaded.present["image"]] == 0).all()
    assert load(manifest, "test").present is None  # complete: nothing to mark
    test_row = rows[-1]
    del test_row["audio"]
    manifest.write_text("\n".join(json.dumps(r) for r in rows[:-1] + [test_row]) + "\n")
    with pytest.raises(DataError, match=r":8: test item '.*' has no 'audio' while other rows do"):
        load(manifest)
