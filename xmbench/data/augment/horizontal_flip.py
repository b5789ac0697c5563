"""Horizontal flip of the batch's images, only for data whose captions do not name left and right.

A flip mirrors the scene: on the built-in data the captions name the order ("on the left …, on
the right …", "x to the left of y") and the audio plays the objects left to right, so a flipped
image would contradict both and become a false positive. Rewriting captions (left ↔ right)
cannot be done exactly ("from left to right: a, b" needs its list reversed, "x to the left of
y" its arguments swapped), so this augmentation refuses at build: always on the built-in data,
and on other data unless the suite declares `captions_order_free = true` (its captions never
rely on left and right, and its audio does not follow the image's layout). With that declared,
each image is mirrored (torchvision.transforms.v2.functional.horizontal_flip) with probability
p, one draw per image from the run's generator.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from xmbench.errors import ConfigError
from xmbench.registry import AUGMENTATIONS
from xmbench.schema import Range


@dataclass(frozen=True)
class HorizontalFlipOptions:
    """Attributes:
    p: probability that an image is mirrored.
    captions_order_free: declares that no caption of the data names left or right (required; never true of the built-in data).
    """

    p: Annotated[float, Range(0, 1)] = 0.5
    captions_order_free: bool = False


class HorizontalFlip:
    def __init__(self, split, options: HorizontalFlipOptions):
        from xmbench.data.augment import _shared

        if _shared.is_builtin(split):
            raise ConfigError("train.augment: horizontal_flip is refused on the built-in data: its captions name "
                              "left and right ('on the left ...', 'x to the left of y') and its audio plays the "
                              "objects left to right, so a mirrored image would contradict both")
        if not options.captions_order_free:
            raise ConfigError("train.augment: horizontal_flip mirrors images, which is wrong wherever captions "
                              "name left and right: set captions_order_free = true to declare that this data's "
                              "captions never do")
        _shared.require(split, "image", "horizontal_flip")
        self.p = options.p

    def __call__(self, batch, generator):
        from torchvision.transforms.v2 import functional as TF

        from xmbench.data.augment import _shared
        from xmbench.lazy import torch

        pixels = batch.inputs["image"]["pixel_values"]
        chosen = _shared.chosen(len(pixels), self.p, generator)
        if not bool(chosen.any()):
            return batch
        flipped = torch.where(chosen.to(pixels.device)[:, None, None, None], TF.horizontal_flip(pixels), pixels)
        return _shared.derive(batch, {"image": {**batch.inputs["image"], "pixel_values": flipped}})


@AUGMENTATIONS.register("horizontal_flip", HorizontalFlipOptions)
def horizontal_flip(split, options: HorizontalFlipOptions):
    """Mirrors images with probability p; refused on the built-in data and unless captions_order_free = true."""
    return HorizontalFlip(split, options)
