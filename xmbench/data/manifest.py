"""On-disk datasets: a manifest of items (captions, image path, audio path, split), checked row by row.

JSONL, one object a line:
    {"id": "x1", "split": "train", "captions": ["a dog barks", ...], "image": "img/x1.png", "audio": "wav/x1.wav"}
CSV with a header: id,split,captions,image,audio — several captions joined with " | ".
Paths are relative to the manifest. A dataset without images or audio leaves that column out
(Clotho and AudioCaps have no images): the modality is then absent and so are its directions.
A training row may leave out a modality that other rows have (an item with text and audio only):
it trains on the pairs it has (xmbench.data.missing). Validation and test rows need every modality
the manifest has, so that every direction is measured on the same items.

Nothing is accepted silently: every row needs a unique id (across splits too: a test item in the
training split would leak), a known split, and captions as a list of non-empty strings; every
file must decode at the length its header declares (a WAV cut short is an error, not padding),
and images of any PIL mode are converted to 8-bit RGB correctly (16-bit scaled, alpha composited
on white). `check_manifest` lists every problem (the preflight); `read_split` refuses the first.
"""
from __future__ import annotations

import csv
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xmbench.data.split import RawSplit
from xmbench.errors import DataError, Problem, did_you_mean

CAPTION_SEPARATOR = " | "
SPLITS = ("train", "val", "test")
MEDIA = ("image", "audio")


@dataclass
class ManifestCheck:
    """What a read of the whole manifest found: its rows, every problem, items per split."""

    rows: list[tuple[int, dict]]
    problems: list[Problem] = field(default_factory=list)

    def count(self, split: str) -> int:
        return sum(1 for _, row in self.rows if row.get("split") == split)

    @property
    def modalities(self) -> tuple[str, ...]:
        present = [m for m in MEDIA if any(row.get(m) for _, row in self.rows)]
        return ("text", *present)


def check_manifest(path: str | Path, decode: bool = True, image_size: int = 64, sample_rate: int = 16000,
                   audio_seconds: float = 1.5) -> ManifestCheck:
    """Every row's problems (ids, splits, captions, files), and with `decode` every file decoded."""
    path = Path(path)
    if not str(path) or str(path) == ".":
        return ManifestCheck([], [Problem("data.manifest", "no manifest path given for the 'manifest' dataset",
                                          "set data.manifest to a .jsonl or .csv file")])
    if not path.is_file():
        return ManifestCheck([], [Problem(str(path), "manifest file not found", "check data.manifest")])
    rows, problems = _parse(path)
    check = ManifestCheck(rows, problems)
    media = [m for m in MEDIA if any(row.get(m) for _, row in rows)]
    first_line: dict[str, tuple[int, str]] = {}
    for line, row in rows:
        where = f"{path}:{line}"
        check.problems += _row_problems(row, where, media)
        item = str(row.get("id", ""))
        if item and item in first_line:
            other, other_split = first_line[item]
            leak = f" (split {other_split} there, {row.get('split')} here: test items would leak into training)" \
                if other_split != row.get("split") else " (it would count as an extra positive of itself)"
            check.problems.append(Problem(where, f"id '{item}' is used already at line {other}{leak}",
                                          "give every item one row with a unique id; several captions go in its list"))
        elif item:
            first_line[item] = (line, row.get("split"))
        if decode:
            for modality in (m for m in media if row.get(m)):  # a training row may lack one
                try:
                    _decode(path, row, modality, where, image_size, sample_rate, audio_seconds)
                except DataError as exc:
                    check.problems.append(Problem.from_error(exc))
    return check


def read_split(path: str | Path, split: str, *, image_size: int, sample_rate: int, audio_seconds: float) -> RawSplit:
    """One split's items, every image and audio file decoded; the first problem of the manifest is an error."""
    path = Path(path)
    check = check_manifest(path, decode=False)
    if check.problems:
        more = f" (and {len(check.problems) - 1} more problems: `xmbench validate` lists them)" if len(check.problems) > 1 else ""
        raise DataError(f"{check.problems[0]}{more}")
    rows = [(line, r) for line, r in check.rows if r.get("split") == split]
    if not rows:
        raise DataError(f"{path}: no rows with split '{split}'")
    media = [m for m in MEDIA if any(row.get(m) for _, row in check.rows)]
    blank = {"image": np.zeros((image_size, image_size, 3), np.uint8),
             "audio": np.zeros(int(round(audio_seconds * sample_rate)), np.float32)}
    decoded = {m: [_decode(path, row, m, f"{path}:{line}", image_size, sample_rate, audio_seconds) if row.get(m)
                   else blank[m] for line, row in rows] for m in media}  # an absent row: zeros, marked below
    present = {m: np.array([bool(row.get(m)) for _, row in rows]) for m in media}
    return RawSplit(split, [str(r["id"]) for _, r in rows], [[c.strip() for c in r["captions"]] for _, r in rows],
                    np.stack(decoded["image"]) if "image" in decoded else None,
                    np.stack(decoded["audio"]) if "audio" in decoded else None, sample_rate,
                    present=present if not all(p.all() for p in present.values()) else None)


# --- rows ---------------------------------------------------------------------------------

def _parse(path: Path) -> tuple[list[tuple[int, dict]], list[Problem]]:
    """(line number, row) pairs of a .jsonl or .csv manifest, and the lines that are not rows."""
    if path.suffix == ".csv":
        with path.open(newline="") as f:
            rows = [(i + 2, dict(r)) for i, r in enumerate(csv.DictReader(f))]
        for _, row in rows:
            row["captions"] = [c.strip() for c in (row.get("captions") or "").split(CAPTION_SEPARATOR.strip())]
        return rows, []
    rows, problems = [], []
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(f"{path}:{i}", f"malformed JSON: {exc}", "one JSON object per line"))
            continue
        if not isinstance(row, dict):
            problems.append(Problem(f"{path}:{i}", f"expected a JSON object, got {type(row).__name__}",
                                    'write {"id": ..., "split": ..., "captions": [...], ...}'))
            continue
        rows.append((i, row))
    return rows, problems


def _row_problems(row: dict, where: str, media: list[str]) -> list[Problem]:
    problems = []
    item = row.get("id")
    if item in (None, ""):
        problems.append(Problem(where, "row has no 'id'", "give every row a unique id"))
    split = row.get("split")
    if split not in SPLITS:
        problems.append(Problem(where, f"split {split!r} is not one of {', '.join(SPLITS)}{did_you_mean(str(split), SPLITS)}",
                                "rows of other splits would be dropped"))
    captions = row.get("captions")
    if isinstance(captions, str):
        problems.append(Problem(where, f"captions of item '{item}' is a string, not a list",
                                f"write \"captions\": [{json.dumps(captions)[:60]}]"))
    elif not isinstance(captions, list) or not captions:
        problems.append(Problem(where, f"item '{item}' has no captions", 'give "captions" a list of strings'))
    else:
        for k, caption in enumerate(captions):
            if not isinstance(caption, str) or not caption.strip():
                problems.append(Problem(where, f"caption {k + 1} of item '{item}' is empty or not a string: {caption!r}",
                                        "every caption must be non-empty text"))
    for modality in media:
        if not row.get(modality) and split != "train":
            problems.append(Problem(where, f"{split} item '{item}' has no '{modality}' while other rows do",
                                    f"give every {split} row a {modality} file (only training rows may lack one), "
                                    f"or leave the column out of every row"))
    return problems


def _decode(manifest: Path, row: dict, modality: str, where: str, image_size: int, sample_rate: int,
            audio_seconds: float) -> np.ndarray:
    member = manifest.parent / str(row[modality])
    if modality == "image":
        return read_image(member, image_size, where)
    return read_audio(member, sample_rate, audio_seconds, where)


# --- files --------------------------------------------------------------------------------

def read_image(path: Path, size: int, where: str) -> np.ndarray:
    """8-bit RGB at size × size from any PIL mode."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.asarray(to_rgb(img).resize((size, size), Image.BILINEAR))
    except FileNotFoundError:
        raise DataError(f"{where}: image file not found: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{where}: corrupt image file {path}: {exc}") from None


def to_rgb(img):
    """8-bit RGB from any mode: 16/32-bit and float greys scaled to 0–255 (PIL would clip them to white),
    transparency composited on white (PIL would keep the colour under a transparent pixel)."""
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or values.max() > 255 else 255.0
        if img.mode == "F" and values.max() <= 1.0:
            top = 1.0
        grey = np.clip(np.round(values / top * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def read_audio(path: Path, sample_rate: int, seconds: float, where: str) -> np.ndarray:
    """Mono float32 at `sample_rate`, zero-padded or cropped to `seconds`; a file cut short is an error."""
    import soundfile
    import torch
    import torchaudio

    if not path.is_file():
        raise DataError(f"{where}: audio file not found: {path}")
    try:
        info = soundfile.info(str(path))
        wave, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        raise DataError(f"{where}: corrupt audio file {path}: {exc}") from None
    declared = _declared_frames(path, info)
    if declared is not None and len(wave) < declared:
        raise DataError(f"{where}: audio file {path} is truncated: its header declares {declared / rate:.3f} s "
                        f"({declared} frames) but it holds {len(wave) / rate:.3f} s — re-export the file")
    mono = torch.from_numpy(wave.mean(axis=1))
    if rate != sample_rate:
        mono = torchaudio.functional.resample(mono, rate, sample_rate)
    length = int(round(seconds * sample_rate))
    out = np.zeros(length, dtype=np.float32)
    out[: min(length, len(mono))] = mono[:length].numpy()
    return out


def _declared_frames(path: Path, info) -> int | None:
    """Frames the file's header promises. libsndfile reports what a cut-short WAV still holds, so
    for WAV the RIFF data chunk's declared size is read here; other formats declare their length
    in the header libsndfile reads (FLAC's STREAMINFO)."""
    if info.format != "WAV":
        return info.frames
    with path.open("rb") as f:
        f.seek(12)  # past "RIFF", the size and "WAVE"
        while header := f.read(8):
            if len(header) < 8:
                return None
            chunk, size = header[:4], struct.unpack("<I", header[4:])[0]
            if chunk == b"data":
                frame_bytes = info.channels * _sample_bytes(info.subtype)
                return size // frame_bytes if frame_bytes else None
            f.seek(size + (size & 1), os.SEEK_CUR)
    return None


def _sample_bytes(subtype: str) -> int:
    return {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}.get(subtype, 0)


def write_manifest(splits: list[RawSplit], out_dir: str | Path) -> Path:
    """Write splits as PNG + WAV files and a manifest.jsonl; return the manifest path."""
    import soundfile
    from PIL import Image

    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    lines = []
    for split in splits:
        for i, item_id in enumerate(split.ids):
            row = {"id": item_id, "split": split.name, "captions": split.captions[i]}
            present = {m: bool(split.present[m][i]) for m in split.present} if split.present else {}
            if split.images is not None and present.get("image", True):
                row["image"] = f"images/{item_id}.png"
                Image.fromarray(split.images[i]).save(out / row["image"])
            if split.audio is not None and present.get("audio", True):
                row["audio"] = f"audio/{item_id}.wav"
                soundfile.write(out / row["audio"], split.audio[i], split.sample_rate, subtype="PCM_16")
            lines.append(json.dumps(row))
    manifest = out / "manifest.jsonl"
    tmp = manifest.with_suffix(".jsonl.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(manifest)
    return manifest
