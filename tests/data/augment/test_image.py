"""Image augmentations: colour jitter and random resized crop (torchvision's operations, the run's draws), the refused flip."""
import copy
import dataclasses

import pytest
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from tests.data.augment._helpers import batch_of, build, generator, same_batches, tiny_split
from xmbench.data.augment.random_resized_crop import crop_boxes
from xmbench.errors import ConfigError

ITEMS = list(range(8))


@pytest.fixture(scope="module")
def split():
    return tiny_split("target")


def user_split(split):
    """The same tensors, presented as on-disk (manifest) data: the built-in data's rules do not apply."""
    other = copy.copy(split)
    other.config = dataclasses.replace(split.config, name="manifest")
    return other


# --- colour jitter ----------------------------------------------------------------------------

def test_brightness_alone_scales_each_image_by_its_own_factor(split):
    batch = batch_of(split, ITEMS)
    out = build("color_jitter", split, brightness=0.5, contrast=0.0, saturation=0.0, hue=0.0)(batch, generator(1))
    before, after = (batch.inputs["image"]["pixel_values"] + 1) / 2, (out.inputs["image"]["pixel_values"] + 1) / 2
    factors = []
    for row in range(len(ITEMS)):
        inside = (before[row] > 0.05) & (before[row] * 1.5 < 0.95)  # pixels no factor clips
        factor = (after[row][inside] / before[row][inside]).median().item()
        assert 0.5 <= factor <= 1.5
        assert torch.allclose(after[row], (before[row] * factor).clamp(0, 1), atol=1e-5)
        factors.append(factor)
    assert len({round(f, 4) for f in factors}) == len(ITEMS)
    assert torch.equal(out.inputs["audio"]["input_values"], batch.inputs["audio"]["input_values"])


def test_jitter_is_torchvisions_with_the_drawn_factors_and_order(split):
    batch = batch_of(split, ITEMS)
    aug = build("color_jitter", split)
    out = aug(batch, generator(4))
    g = generator(4)
    torch.rand(len(ITEMS), generator=g)  # the choice
    draws = torch.rand(len(ITEMS), 8, generator=g, dtype=torch.float64)
    ops = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
    for row in range(len(ITEMS)):
        factors = [0.8 + 0.4 * draws[row, i].item() for i in range(3)] + [-0.02 + 0.04 * draws[row, 3].item()]
        image = (batch.inputs["image"]["pixel_values"][row] + 1) / 2
        for index in torch.argsort(draws[row, 4:]).tolist():
            image = ops[index](image, factors[index])
        assert torch.allclose(out.inputs["image"]["pixel_values"][row], image * 2 - 1, atol=1e-6)
    assert same_batches(aug(batch, generator(4)), out)
    assert not same_batches(aug(batch, generator(5)), out)


def test_hue_ranges_that_could_change_a_colour_name_are_refused_on_built_in_data(split):
    with pytest.raises(ConfigError, match="colour is a label"):
        build("color_jitter", split, hue=0.04)
    build("color_jitter", split, hue=0.03)
    build("color_jitter", user_split(split), hue=0.3)


# --- random resized crop ----------------------------------------------------------------------

def test_crop_boxes_follow_torchvisions_rule():
    half = torch.full((1, 10, 4), 0.5, dtype=torch.float64)  # area share and log-ratio mid-range, centred position
    assert crop_boxes(32, 32, half, (0.5, 0.5), (1.0, 1.0)) == [(5, 5, 23, 23)]  # sqrt(512) rounds to 23; floor(0.5 · 10)
    # nothing fits (a 2:1 crop of the whole area cannot lie in a square): torchvision's fallback, as its get_params
    for ratio in ((2.0, 3.0), (0.3, 0.5)):
        transform = v2.RandomResizedCrop(32, scale=(1.0, 1.0), ratio=ratio)
        params = transform.make_params([torch.zeros(3, 32, 32)])
        assert crop_boxes(32, 32, torch.rand(1, 10, 4, generator=generator()), (1.0, 1.0), ratio) == [
            (params["top"], params["left"], params["height"], params["width"])]


def test_crops_are_resized_back_and_the_whole_image_is_the_identity(split):
    batch = batch_of(split, ITEMS)
    whole = build("random_resized_crop", split, scale_min=1.0, scale_max=1.0, ratio_min=1.0, ratio_max=1.0)(batch, generator())
    assert torch.allclose(whole.inputs["image"]["pixel_values"], batch.inputs["image"]["pixel_values"], atol=1e-6)
    aug = build("random_resized_crop", split, scale_min=0.5, scale_max=0.7)
    out = aug(batch, generator(3))
    g = generator(3)
    torch.rand(len(ITEMS), generator=g)
    boxes = crop_boxes(32, 32, torch.rand(len(ITEMS), 10, 4, generator=g, dtype=torch.float64), (0.5, 0.7), (3 / 4, 4 / 3))
    for row, (top, left, h, w) in enumerate(boxes):
        assert 0.45 * 32 * 32 <= h * w <= 0.75 * 32 * 32
        expected = TF.resized_crop(batch.inputs["image"]["pixel_values"][row], top, left, h, w, [32, 32], antialias=True)
        assert torch.equal(out.inputs["image"]["pixel_values"][row], expected)
    assert out.inputs["image"]["pixel_values"].shape == batch.inputs["image"]["pixel_values"].shape
    assert same_batches(aug(batch, generator(3)), out)
    with pytest.raises(ConfigError, match="scale_min must not exceed scale_max"):
        build("random_resized_crop", split, scale_min=0.9, scale_max=0.8)


# --- horizontal flip --------------------------------------------------------------------------

def test_horizontal_flip_is_refused_on_built_in_data_even_when_declared_order_free(split):
    for declared in (False, True):
        with pytest.raises(ConfigError, match="refused on the built-in data: its captions name left and right"):
            build("horizontal_flip", split, captions_order_free=declared)


def test_horizontal_flip_needs_user_data_declared_order_free(split):
    with pytest.raises(ConfigError, match="set captions_order_free = true"):
        build("horizontal_flip", user_split(split))
    batch = batch_of(split, ITEMS)
    out = build("horizontal_flip", user_split(split), captions_order_free=True, p=0.5)(batch, generator(6))
    chosen = torch.rand(len(ITEMS), generator=generator(6)) < 0.5
    assert 0 < chosen.sum() < len(ITEMS)
    expected = torch.where(chosen[:, None, None, None], batch.inputs["image"]["pixel_values"].flip(-1),
                           batch.inputs["image"]["pixel_values"])
    assert torch.equal(out.inputs["image"]["pixel_values"], expected)
