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
    # item i is a hard negative of item hard_negative_of[i] (one attribute changed, or two objects swapped);
    # -1 where it is not; None where the dataset does not know (on-disk data)
    hard_negative_of: list[int] | None = None
    # modality → bool per item: which items have it (xmbench.data.missing); None: every item has every modality
    present: dict[str, np.ndarray] | None = None

    @property
    def modalities(self) -> tuple[str, ...]:
        present = {"text": self.captions, "image": self.images, "audio": self.audio}
        return tuple(m for m in MODALITIES if present[m] is not None)

    def __len__(self) -> int:
        return len(self.ids)
