"""Colour jitter of the batch's images: brightness, contrast, saturation and hue, per image, in a random order.

As torchvision's ColorJitter: each chosen image draws a brightness, contrast and saturation factor
uniform in [max(0, 1 - x), 1 + x] and a hue shift uniform in [-hue, hue], and applies the four in
a random order; the operations are torchvision.transforms.v2.functional's adjust_brightness,
adjust_contrast, adjust_saturation and adjust_hue, on the image mapped from the towers' [-1, 1]
to [0, 1] and back (they clamp to [0, 1] as on real images). The factors come from the run's
generator (v2.ColorJitter draws from torch's global RNG, once per call: a batched call would
give every image the same factors), so the transform is torchvision's and the draws are ours:
one for the choice and eight (four factors, four for the order) per image, whatever p is.

On the built-in data colour is a label: the hues of its six colours are 0.064 apart at least
(yellow and orange, on torchvision's [-0.5, 0.5] hue scale), so a hue range of half that or
more is refused there. Saturation near 0 makes an image grey: keep `saturation` well under 1.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from xmbench.errors import ConfigError
from xmbench.registry import AUGMENTATIONS
from xmbench.schema import NON_NEGATIVE, Range


def palette_hue_gap() -> float:
    """The smallest hue distance (circular, hue in [0, 1)) between the built-in data's colours."""
    import colorsys
    import itertools

    from xmbench.data.synthetic import COLOURS

    hues = [colorsys.rgb_to_hsv(*(c / 255 for c in rgb))[0] for rgb in COLOURS.values()]
    return min(min(abs(a - b), 1 - abs(a - b)) for a, b in itertools.combinations(hues, 2))


@dataclass(frozen=True)
class ColorJitterOptions:
    """Attributes:
    brightness: brightness factor drawn in [max(0, 1 - brightness), 1 + brightness].
    contrast: contrast factor drawn in [max(0, 1 - contrast), 1 + contrast].
    saturation: saturation factor drawn in [max(0, 1 - saturation), 1 + saturation].
    hue: hue shift drawn in [-hue, hue] (a full turn is 1).
    p: probability that an image is jittered.
    """

    brightness: Annotated[float, NON_NEGATIVE] = 0.2
    contrast: Annotated[float, NON_NEGATIVE] = 0.2
    saturation: Annotated[float, NON_NEGATIVE] = 0.2
    hue: Annotated[float, Range(0, 0.5)] = 0.02
    p: Annotated[float, Range(0, 1)] = 1.0


class ColorJitter:
    def __init__(self, split, options: ColorJitterOptions):
        from xmbench.data.augment import _shared

        _shared.require(split, "image", "color_jitter")
        if _shared.is_builtin(split) and options.hue >= palette_hue_gap() / 2:
            raise ConfigError(f"train.augment: color_jitter: on the built-in data colour is a label (its hues are "
                              f"{palette_hue_gap():.3f} apart at least); hue = {options.hue:g} is refused there "
                              f"(keep it under {palette_hue_gap() / 2:.3f})")
        self.options = options

    def jitter(self, image, factors, order):
        """One [0, 1] image (3, H, W) through the four adjustments in `order` (indices into factors)."""
        from torchvision.transforms.v2 import functional as TF

        ops = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
        ranges = (self.options.brightness, self.options.contrast, self.options.saturation, self.options.hue)
        for index in order:
            if ranges[index] > 0:  # as ColorJitter: an operation with no range is skipped (hue 0 is no exact identity)
                image = ops[index](image, float(factors[index]))
        return image

    def __call__(self, batch, generator):
        from xmbench.data.augment import _shared
        from xmbench.lazy import torch

        o = self.options
        pixels = batch.inputs["image"]["pixel_values"]
        rows = len(pixels)
        chosen = _shared.chosen(rows, o.p, generator)
        draws = torch.rand(rows, 8, generator=generator, dtype=torch.float64)  # 4 factors, 4 for the order
        low = lambda x: max(0.0, 1.0 - x)  # noqa: E731
        factors = torch.stack([low(x) + (1 + x - low(x)) * draws[:, i]
                               for i, x in enumerate((o.brightness, o.contrast, o.saturation))]
                              + [-o.hue + 2 * o.hue * draws[:, 3]], dim=1)
        orders = torch.argsort(draws[:, 4:], dim=1)  # a uniform random permutation of the four operations
        if not bool(chosen.any()):
            return batch
        out = pixels.clone()
        for row in chosen.nonzero()[:, 0].tolist():
            image = ((pixels[row] + 1) / 2).clamp(0, 1)
            out[row] = self.jitter(image, factors[row].tolist(), orders[row].tolist()) * 2 - 1
        return _shared.derive(batch, {"image": {**batch.inputs["image"], "pixel_values": out}})


@AUGMENTATIONS.register("color_jitter", ColorJitterOptions)
def color_jitter(split, options: ColorJitterOptions):
    """Brightness/contrast/saturation/hue jitter per image (torchvision's operations, the run's draws)."""
    return ColorJitter(split, options)
