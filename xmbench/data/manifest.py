"""On-disk datasets: a manifest of items (captions, image path, audio path, split).

JSONL, one object a line:
    {"id": "x1", "split": "train", "captions": ["a dog barks", ...], "image": "img/x1.png", "audio": "wav/x1.wav"}
CSV with a header: id,split,captions,image,audio — several captions joined with " | ".
Paths are relative to the manifest. A dataset without images or audio leaves that column out
(Clotho and AudioCaps have no images): the modality is then absent and so are its directions.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio
from PIL import Image, UnidentifiedImageError

from xmbench.data.split import RawSplit
from xmbench.errors import DataError

CAPTION_SEPARATOR = " | "


def read_rows(path: str | Path) -> list[tuple[int, dict]]:
    """(line number, row) pairs of a .jsonl or .csv manifest."""
    path = Path(path)
    if not str(path):
        raise DataError("data.manifest: no manifest path given for the 'manifest' dataset")
    if not path.is_file():
        raise DataError(f"{path}: manifest file not found")
    if path.suffix == ".csv":
        with path.open(newline="") as f:
            rows = [(i + 2, dict(r)) for i, r in enumerate(csv.DictReader(f))]
        for _, row in rows:
            row["captions"] = [c.strip() for c in (row.get("captions") or "").split(CAPTION_SEPARATOR.strip())]
        return rows
    rows = []
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                rows.append((i, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{i}: malformed JSON: {exc}") from None
    return rows


def read_split(path: str | Path, split: str, *, image_size: int, sample_rate: int, audio_seconds: float) -> RawSplit:
    """Load one split's items, decoding every image and audio file, with errors naming the row."""
    path = Path(path)
    rows = [(line, r) for line, r in read_rows(path) if r.get("split") == split]
    if not rows:
        raise DataError(f"{path}: no rows with split '{split}'")
    has_image = any(r.get("image") for _, r in rows)
    has_audio = any(r.get("audio") for _, r in rows)
    ids, captions, images, audio = [], [], [], []
    for line, row in rows:
        where = f"{path}:{line}"
        if not row.get("id"):
            raise DataError(f"{where}: row has no 'id'")
        texts = row.get("captions")
        if not isinstance(texts, list) or not texts or any(not isinstance(c, str) or not c.strip() for c in texts):
            raise DataError(f"{where}: item '{row['id']}' has an empty or missing caption")
        ids.append(str(row["id"]))
        captions.append([c.strip() for c in texts])
        if has_image:
            images.append(read_image(_member(path, row, "image", where), image_size, where))
        if has_audio:
            audio.append(read_audio(_member(path, row, "audio", where), sample_rate, audio_seconds, where))
    return RawSplit(split, ids, captions, np.stack(images) if has_image else None,
                    np.stack(audio) if has_audio else None, sample_rate)


def _member(manifest: Path, row: dict, key: str, where: str) -> Path:
    if not row.get(key):
        raise DataError(f"{where}: item '{row['id']}' has no '{key}' while other rows do")
    return manifest.parent / row[key]


def read_image(path: Path, size: int, where: str) -> np.ndarray:
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB").resize((size, size), Image.BILINEAR))
    except FileNotFoundError:
        raise DataError(f"{where}: image file not found: {path}") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{where}: corrupt image file {path}: {exc}") from None


def read_audio(path: Path, sample_rate: int, seconds: float, where: str) -> np.ndarray:
    """Mono float32 at `sample_rate`, zero-padded or cropped to `seconds`."""
    if not path.is_file():
        raise DataError(f"{where}: audio file not found: {path}")
    try:
        wave, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        raise DataError(f"{where}: corrupt audio file {path}: {exc}") from None
    mono = torch.from_numpy(wave.mean(axis=1))
    if rate != sample_rate:
        mono = torchaudio.functional.resample(mono, rate, sample_rate)
    length = int(round(seconds * sample_rate))
    out = np.zeros(length, dtype=np.float32)
    out[: min(length, len(mono))] = mono[:length].numpy()
    return out


def write_manifest(splits: list[RawSplit], out_dir: str | Path) -> Path:
    """Write splits as PNG + WAV files and a manifest.jsonl; return the manifest path."""
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    lines = []
    for split in splits:
        for i, item_id in enumerate(split.ids):
            row = {"id": item_id, "split": split.name, "captions": split.captions[i]}
            if split.images is not None:
                row["image"] = f"images/{item_id}.png"
                Image.fromarray(split.images[i]).save(out / row["image"])
            if split.audio is not None:
                row["audio"] = f"audio/{item_id}.wav"
                soundfile.write(out / row["audio"], split.audio[i], split.sample_rate, subtype="PCM_16")
            lines.append(json.dumps(row))
    manifest = out / "manifest.jsonl"
    tmp = manifest.with_suffix(".jsonl.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(manifest)
    return manifest
