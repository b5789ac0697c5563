"""Random resized crop of the batch's images (Inception-style, as torchvision's RandomResizedCrop), per image.

Each chosen image draws a crop as torchvision's RandomResizedCrop.get_params does: up to ten
tries of an area share uniform in [scale_min, scale_max] and an aspect ratio log-uniform in
[ratio_min, ratio_max], the first that fits taking a uniform position; if none fits, the largest
centred crop within the ratio range. The crop is resized back to the image's size with
torchvision.transforms.v2.functional.resized_crop (bilinear, antialiased), directly on the
towers' [-1, 1] values (resizing is linear). The draws are the run's (v2.RandomResizedCrop draws
from torch's global RNG, once per call): one for the choice and forty (ten tries of four) per
image, whatever p is, so the stream does not depend on which try fitted.

Cropping cuts objects off: on the built-in data objects sit at (k + 0.5)/n of the width with radii
up to 16% of it, and the outer ones of a three-object scene touch the borders, so a crop that
drops more than a few per cent of the width can remove part or all of an object the captions
name (and which the audio still plays). Keep scale_min high there (default 0.85), or accept
that some positives become partial.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

from xmbench.errors import ConfigError
from xmbench.registry import AUGMENTATIONS
from xmbench.schema import POSITIVE, Range

TRIES = 10


def crop_boxes(height: int, width: int, draws, scale: tuple[float, float], ratio: tuple[float, float]):
    """(top, left, h, w) of each row from its (TRIES, 4) uniform draws, as torchvision's get_params."""
    from xmbench.lazy import torch

    area = height * width
    target = area * (scale[0] + (scale[1] - scale[0]) * draws[..., 0])
    log_low, log_high = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_low + (log_high - log_low) * draws[..., 1])
    w = torch.round(torch.sqrt(target * aspect)).long()
    h = torch.round(torch.sqrt(target / aspect)).long()
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = torch.where(fits.any(1), fits.long().argmax(1), torch.full((len(draws),), -1))
    boxes = []
    for row, index in enumerate(first.tolist()):
        if index < 0:  # torchvision's fallback: the whole image cut to the nearest allowed ratio
            in_ratio = width / height
            if in_ratio < ratio[0]:
                cw, ch = width, int(round(width / ratio[0]))
            elif in_ratio > ratio[1]:
                cw, ch = int(round(height * ratio[1])), height
            else:
                cw, ch = width, height
            boxes.append(((height - ch) // 2, (width - cw) // 2, ch, cw))
            continue
        ch, cw = int(h[row, index]), int(w[row, index])
        top = int(draws[row, index, 2] * (height - ch + 1))
        left = int(draws[row, index, 3] * (width - cw + 1))
        boxes.append((min(top, height - ch), min(left, width - cw), ch, cw))
    return boxes


@dataclass(frozen=True)
class RandomResizedCropOptions:
    """Attributes:
    scale_min: smallest share of the image's area a crop keeps.
    scale_max: largest share of the image's area a crop keeps.
    ratio_min: narrowest aspect ratio (width / height) of a crop.
    ratio_max: widest aspect ratio of a crop.
    p: probability that an image is cropped.
    """

    scale_min: Annotated[float, Range(0, 1, low_open=True)] = 0.85
    scale_max: Annotated[float, Range(0, 1, low_open=True)] = 1.0
    ratio_min: Annotated[float, POSITIVE] = 3 / 4
    ratio_max: Annotated[float, POSITIVE] = 4 / 3
    p: Annotated[float, Range(0, 1)] = 1.0


class RandomResizedCrop:
    def __init__(self, split, options: RandomResizedCropOptions):
        from xmbench.data.augment import _shared

        _shared.require(split, "image", "random_resized_crop")
        if options.scale_min > options.scale_max or options.ratio_min > options.ratio_max:
            raise ConfigError("train.augment: random_resized_crop: scale_min must not exceed scale_max, "
                              "nor ratio_min ratio_max")
        self.options = options

    def __call__(self, batch, generator):
        from torchvision.transforms.v2 import functional as TF

        from xmbench.data.augment import _shared
        from xmbench.lazy import torch

        o = self.options
        pixels = batch.inputs["image"]["pixel_values"]
        rows, _, height, width = pixels.shape
        chosen = _shared.chosen(rows, o.p, generator)
        draws = torch.rand(rows, TRIES, 4, generator=generator, dtype=torch.float64)
        if not bool(chosen.any()):
            return batch
        boxes = crop_boxes(height, width, draws, (o.scale_min, o.scale_max), (o.ratio_min, o.ratio_max))
        out = pixels.clone()
        for row in chosen.nonzero()[:, 0].tolist():
            top, left, h, w = boxes[row]
            out[row] = TF.resized_crop(pixels[row], top, left, h, w, [height, width], antialias=True)
        return _shared.derive(batch, {"image": {**batch.inputs["image"], "pixel_values": out}})


@AUGMENTATIONS.register("random_resized_crop", RandomResizedCropOptions)
def random_resized_crop(split, options: RandomResizedCropOptions):
    """Random resized crop per image (area share and aspect ranges; torchvision's resize); can cut objects off."""
    return RandomResizedCrop(split, options)
