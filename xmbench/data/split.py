"""The raw form every dataset produces: one split of items with captions, images and audio."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xmbench.config import MODALITIES


@dataclass
class RawSplit:
    """Items of one split. A modality a dataset lacks is None (e.g. Clotho has no images)."""

    name: str  # train | val | test
    ids: list[str]
    captions: list[list[str]] | None  # several paraphrases per item: multi-positive retrieval
    images: np.ndarray | None  # (N, H, W, 3) uint8
    audio: np.ndarray | None  # (N, samples) float32 at sample_rate
    sample_rate: int

    @property
    def modalities(self) -> tuple[str, ...]:
        present = {"text": self.captions, "image": self.images, "audio": self.audio}
        return tuple(m for m in MODALITIES if present[m] is not None)

    def __len__(self) -> int:
        return len(self.ids)
