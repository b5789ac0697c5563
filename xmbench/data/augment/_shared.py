"""What the augmentations share (imported by their builders, never at registration: it imports torch).

- `data_config(split, name)`: the DataConfig the training split was loaded with (`split.config`).
- `preprocessor(cfg)` and `raw_audio(split)`: one Preprocessor (tokenizer, mel transform) and one
  copy of the split's raw waveforms per process, shared by every augmentation of a run. The
  waveforms come from `xmbench.data.sources.load_raw` once, at build (the default built-in split
  of 1,024 × 1.5 s clips at 16 kHz holds 98 MB as float32).
- `chosen`, `uniform`: per-row draws from the run's generator, always the same number of values
  for a batch of a given size (the stream does not depend on which rows were chosen).
- The waveform a batch carries: waveform-domain augmentations (gain, noise, time shift, pitch
  shift, mixing) read the batch's current waveforms (the raw clips of its items, or what an
  earlier augmentation of the same batch made of them), change them, and recompute the batch's
  log-mel with the Preprocessor's mel transform, so that they compose in the order listed. The
  waveforms ride on the Batch in `batch.extras["augment"]` (copied by `derive`);
  a log-mel-domain augmentation (spec_augment) marks it, and a waveform-domain one listed after
  it refuses (recomputing the log-mel would silently drop the masks).
"""
from __future__ import annotations

import functools
import json

import torch

from xmbench.errors import ConfigError, DataError

STATE = "augment"  # the Batch.extras key holding {"waveform": (rows, samples) tensor, "mel_edited": bool}


def data_config(split, name: str):
    """The DataConfig of the training split, or a ConfigError saying the augmentation needs it."""
    cfg = getattr(split, "config", None)
    if cfg is None:
        raise ConfigError(f"train.augment: {name} needs the training split's DataConfig (split.config, "
                          f"set by xmbench.data.sources.load_split)")
    return cfg


def is_builtin(split) -> bool:
    """Whether the split is the built-in synthetic set (whose generator's constants are known)."""
    cfg = getattr(split, "config", None)
    return cfg is not None and cfg.name == "synthetic"


def require(split, modality: str, name: str) -> None:
    if getattr(split, modality, None) is None:
        raise ConfigError(f"train.augment: {name} changes the {modality} modality, which the training split lacks")


def _key(cfg) -> str:
    from xmbench.schema import to_tree

    return json.dumps(to_tree(cfg), sort_keys=True)


def _config(key: str):
    from xmbench.config import DataConfig
    from xmbench.schema import load

    return load(DataConfig, json.loads(key))


def preprocessor(cfg):
    """The Preprocessor of `cfg` (tokenizer, mel transform), one per config in this process."""
    return _preprocessor(_key(cfg))


@functools.lru_cache(maxsize=4)
def _preprocessor(key: str):
    from xmbench.data.preprocess import Preprocessor

    return Preprocessor(_config(key))


def raw_audio(split, name: str) -> torch.Tensor:
    """(items, samples) float32 raw waveforms of the split's items, in its row order (loaded once per process)."""
    cfg = data_config(split, name)
    require(split, "audio", name)
    waves, ids = _raw_audio(_key(cfg), split.name)
    if ids != list(split.ids):
        raise DataError(f"train.augment: {name}: the raw {split.name} split does not list the items of the "
                        f"encoded one (its files changed since it was loaded?)")
    return waves


@functools.lru_cache(maxsize=2)
def _raw_audio(key: str, split_name: str) -> tuple[torch.Tensor, list[str]]:
    from xmbench.data.sources import load_raw

    raw = load_raw(_config(key), split_name)
    if raw.audio is None:
        raise ConfigError(f"train.augment: the raw {split_name} split has no audio")
    return torch.from_numpy(raw.audio), list(raw.ids)


# --- draws ----------------------------------------------------------------------------------

def chosen(n: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """(n,) bool: each row with probability p (n values drawn whatever p is)."""
    return torch.rand(n, generator=generator) < p


def uniform(shape, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator, dtype=torch.float64)


# --- batches --------------------------------------------------------------------------------

def state(batch) -> dict:
    return batch.extras.get(STATE, {})


def derive(batch, inputs: dict | None = None, item_ids: dict | None = None, **changes):
    """A new Batch with some modalities' inputs (and item ids) replaced, carrying the augmentation state."""
    from xmbench.train.step import Batch

    return Batch({**batch.inputs, **(inputs or {})}, {**batch.item_ids, **(item_ids or {})},
                 {**batch.extras, STATE: {**state(batch), **changes}}, batch.present)


def waveforms(batch, raw: torch.Tensor, name: str) -> torch.Tensor:
    """(rows, samples) current waveforms of the batch's audio rows (CPU float32)."""
    current = state(batch)
    if current.get("mel_edited"):
        raise ConfigError(f"train.augment: {name} works on the waveform and recomputes the log-mel, which would "
                          f"drop the masks of spec_augment listed before it: list waveform augmentations first")
    wave = current.get("waveform")
    if wave is None:
        wave = raw[batch.item_ids["audio"].cpu()]
    return wave


def with_waveforms(batch, wave: torch.Tensor, cfg, changed: torch.Tensor | None = None):
    """The batch carrying `wave`, its audio rows recomputed from it by the Preprocessor (log-mel, standardised).

    `changed` (rows,) bool: only those rows are recomputed (the others keep their inputs); None: every row.
    """
    key = audio_key(cfg)
    old = batch.inputs["audio"][key]
    if changed is None:
        logmel = log_mel(wave, cfg).to(device=old.device, dtype=old.dtype)
    elif bool(changed.any()):
        logmel = old.clone()
        index = changed.nonzero()[:, 0]
        logmel[index.to(old.device)] = log_mel(wave[index], cfg).to(device=old.device, dtype=old.dtype)
    else:
        logmel = old
    return derive(batch, {"audio": {**batch.inputs["audio"], key: logmel}}, waveform=wave)


def audio_key(cfg) -> str:
    """The audio input the waveforms are turned into: the built-in log-mel's `input_values`, or the processor's."""
    return preprocessor(cfg).audio_key


def log_mel(wave: torch.Tensor, cfg) -> torch.Tensor:
    """The audio tower's input of waveforms (built-in: (rows, frames, n_mels)), exactly as the split was preprocessed."""
    return preprocessor(cfg).encode_audio(wave.detach().to("cpu", torch.float32).contiguous().numpy())


def replace_rows(original: torch.Tensor, changed: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """`original` with the `rows` (bool, on CPU) taken from `changed`."""
    mask = rows.to(original.device).view(-1, *([1] * (original.dim() - 1)))
    return torch.where(mask, changed.to(original.dtype), original)


class WaveformAugmentation:
    """An augmentation of the batch's waveforms: `change(wave, generator) -> wave` on the chosen rows.

    Each row is chosen with probability `p` (drawn first), then `change` draws its parameters for
    every row of the batch (chosen or not, so the stream does not depend on the choice) and
    returns all rows changed; the chosen ones replace the batch's waveforms and their log-mel.
    """

    def __init__(self, split, name: str, p: float, change):
        self.name, self.p, self.change = name, p, change
        self.cfg = data_config(split, name)
        self.raw = raw_audio(split, name)

    def __call__(self, batch, generator):
        wave = waveforms(batch, self.raw, self.name)
        rows = chosen(len(wave), self.p, generator)
        changed = self.change(wave, generator).to(wave.dtype)
        if not bool(rows.any()):
            return batch
        return with_waveforms(batch, torch.where(rows[:, None], changed, wave), self.cfg, rows)
