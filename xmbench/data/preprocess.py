"""Preprocessing: each modality's processor (xmbench.data.processors) over a whole split.

The whole split is preprocessed once into tensors; batches are then row slices, so the
training loop never waits on Python-level data work.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from xmbench.config import DataConfig
from xmbench.data import processors
from xmbench.data.split import RawSplit


def mel_frames(cfg: DataConfig) -> int:
    """Number of built-in log-mel frames of one clip: the built-in audio tower's input length."""
    return int(round(cfg.audio_seconds * cfg.sample_rate)) // processors.BuiltinAudio.HOP_LENGTH + 1


@dataclass
class EncodedSplit:
    """A split as model-ready tensors. Text rows are captions; image and audio rows are items."""

    name: str
    ids: list[str]
    text: dict[str, torch.Tensor] | None  # input_ids, attention_mask: (n_captions, tokens)
    caption_item: torch.Tensor | None  # (n_captions,) the item each caption describes
    caption_offsets: torch.Tensor | None  # (n_items + 1,) captions of item i: offsets[i]:offsets[i+1]
    image: dict[str, torch.Tensor] | None  # pixel_values: (n_items, 3, H, W)
    audio: dict[str, torch.Tensor] | None  # built-in input_values: (n_items, frames, n_mels); else the processor's
    hard_negative_of: list[int] | None = None  # see RawSplit: the built-in set knows its hard negatives
    present: dict[str, torch.Tensor] | None = None  # see RawSplit: modality → bool per item; None: all present

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(m for m in ("text", "image", "audio") if getattr(self, m) is not None)

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, modality: str, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Inputs of the given rows; text padding is trimmed to the longest caption of the batch."""
        inputs = {k: v[index] for k, v in getattr(self, modality).items()}
        if modality == "text" and "attention_mask" in inputs:  # an audio mask may count mel frames, not columns
            width = int(inputs["attention_mask"].sum(1).max())
            inputs = {k: v[:, :width] for k, v in inputs.items()}
        return inputs

    def length_order(self, modality: str) -> torch.Tensor:
        """Row numbers shortest caption first (other modalities: as stored).

        Batches of similar length waste little compute on padding: on the built-in test split
        (mean 18 tokens, batches padded to 30) this makes text encoding about twice as fast.
        """
        inputs = getattr(self, modality)
        if "attention_mask" not in inputs:
            return torch.arange(self.n_rows(modality))
        return torch.argsort(inputs["attention_mask"].sum(1), stable=True)

    def as_row_indices(self, modality: str) -> EncodedSplit:
        """A copy whose `modality` inputs are just row numbers, for a PrecomputedTower."""
        return replace(self, **{modality: {"row": torch.arange(self.n_rows(modality))}})

    def n_rows(self, modality: str) -> int:
        return len(self.caption_item) if modality == "text" else len(self.ids)

    def row_ids(self, modality: str) -> list[str]:
        """The item id of every row: the positives of retrieval are rows with equal ids."""
        if modality == "text":
            return [self.ids[i] for i in self.caption_item.tolist()]
        return list(self.ids)

    def hard_negative_rows(self, modality: str) -> list[int] | None:
        """Rows of the items that have a known hard negative in this split (either side of the pair):
        the queries where telling near-identical items apart decides the rank. None when unknown."""
        if self.hard_negative_of is None:
            return None
        paired = {i for i, other in enumerate(self.hard_negative_of) if 0 <= other < len(self.ids) and other != i}
        paired |= {self.hard_negative_of[i] for i in paired}
        items = self.caption_item.tolist() if modality == "text" else range(len(self.ids))
        return [row for row, item in enumerate(items) if item in paired]

    def sample_captions(self, items: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One random caption row per item: each step sees a different paraphrase."""
        start, stop = self.caption_offsets[items], self.caption_offsets[items + 1]
        pick = torch.rand(len(items), generator=generator)
        return start + (pick * (stop - start)).long()


class Preprocessor:
    """Turns a RawSplit into an EncodedSplit with each tower's input format (xmbench.data.processors)."""

    def __init__(self, cfg: DataConfig):
        self.cfg = cfg
        self.text = processors.processor(cfg, "text")
        self.image = processors.processor(cfg, "image")
        self.audio = processors.processor(cfg, "audio")
        self.tokenizer = getattr(self.text, "tokenizer", None)  # the text augmentations edit tokens with it
        self.audio_key = self.audio.key  # the audio tensor the waveform augmentations recompute

    def __call__(self, raw: RawSplit) -> EncodedSplit:
        text = caption_item = offsets = image = audio = None
        if raw.captions is not None:
            text, caption_item, offsets = self.encode_text(raw.captions)
        if raw.images is not None:
            image = self.image(raw.images)
        if raw.audio is not None:
            audio = self.audio(raw.audio)
        present = {m: torch.as_tensor(p, dtype=torch.bool) for m, p in raw.present.items()} if raw.present else None
        return EncodedSplit(raw.name, list(raw.ids), text, caption_item, offsets, image, audio, raw.hard_negative_of,
                            present)

    def encode_text(self, captions: list[list[str]]):
        tokens = self.text([c for item in captions for c in item])
        counts = torch.tensor([len(item) for item in captions])
        caption_item = torch.repeat_interleave(torch.arange(len(captions)), counts)
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
        return tokens, caption_item, offsets

    def encode_images(self, images: np.ndarray) -> torch.Tensor:
        return self.image(images)["pixel_values"]

    def encode_audio(self, audio: np.ndarray) -> torch.Tensor:
        """The audio tower's main input (`audio_key`) of raw waveforms."""
        return self.audio(audio)[self.audio_key]
