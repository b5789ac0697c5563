"""mix_negatives (new items spliced from two, as extra negatives) and cross_modal_shift (one translation, image and audio)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.data.augment._helpers import batch_of, build, generator, same_batches, tiny_split
from xmbench.data import synthetic
from xmbench.data.augment import _shared
from xmbench.data.augment.cross_modal_shift import shift_columns
from xmbench.data.augment.time_shift import shift_rows
from xmbench.registry import LOSSES
from xmbench.train.step import LossInput

ITEMS = [0, 1, 2, 4, 5, 7, 8, 9]  # none a known hard negative of another (3 of 2, 6 of 5)


@pytest.fixture(scope="module")
def split():
    return tiny_split()


@pytest.fixture(scope="module")
def raw(split):
    return _shared.raw_audio(split, "test")


# --- mix_negatives ----------------------------------------------------------------------------

def test_mixed_items_are_spliced_halves_with_new_ids_appended_to_image_and_audio(split, raw):
    batch = batch_of(split, ITEMS)
    out = build("mix_negatives", split, share=0.5)(batch, generator(0))
    pixels, before = out.inputs["image"]["pixel_values"], batch.inputs["image"]["pixel_values"]
    added = len(pixels) - len(ITEMS)
    assert added == 4  # round(0.5 · 8) pairs, none skipped here
    assert torch.equal(pixels[:8], before) and torch.equal(out.inputs["text"]["input_ids"], batch.inputs["text"]["input_ids"])
    new = out.item_ids["image"][8:]
    assert torch.equal(out.item_ids["audio"][8:], new) and torch.equal(out.item_ids["text"], batch.item_ids["text"])
    assert new.tolist() == [12, 13, 14, 15]  # above every dataset row (12 items)
    wave = _shared.state(out)["waveform"]
    for k in range(added):
        left = [r for r in range(8) if torch.equal(before[r][..., :16], pixels[8 + k][..., :16])]
        right = [r for r in range(8) if torch.equal(before[r][..., 16:], pixels[8 + k][..., 16:])]
        assert len(left) == 1 and len(right) == 1 and left != right
        a, b = ITEMS[left[0]], ITEMS[right[0]]
        assert torch.equal(wave[8 + k], torch.cat([raw[a][:4000], raw[b][4000:]]))
    assert torch.equal(out.inputs["audio"]["input_values"][8:], _shared.log_mel(wave[8:], split.config))
    assert torch.equal(out.inputs["audio"]["input_values"][:8], batch.inputs["audio"]["input_values"])
    assert same_batches(build("mix_negatives", split, share=0.5)(batch, generator(0)), out)


def test_same_items_and_known_hard_negative_pairs_are_not_mixed(split):
    assert split.hard_negative_of[3] == 2
    aug = build("mix_negatives", split, share=1.0)
    pair = batch_of(split, [2, 3])
    assert aug(pair, generator()) is pair
    views = batch_of(split, [4, 4])  # two views of one item
    assert aug(views, generator()) is views


def test_mixed_items_are_extra_negatives_for_id_aware_losses(split):
    out = build("mix_negatives", split, share=0.25)(batch_of(split, ITEMS), generator(1))
    ids = out.item_ids
    embeddings = {m: F.normalize(torch.randn(len(ids[m]), 4, generator=generator(2)), dim=-1) for m in ids}
    pairs = [("text", "image"), ("text", "audio"), ("image", "audio")]
    inputs = LossInput(embeddings, ids, {f"{a}-{b}": torch.tensor(5.0) for a, b in pairs}, pairs)
    result = LOSSES.bind(LOSSES.default("supcon"))(inputs)
    assert all(torch.isfinite(v) for v in result.parts.values())
    assert not (ids["text"][:, None] == ids["image"][None, 8:]).any()  # no caption has a mixed item as positive
    assert torch.equal(ids["image"], ids["audio"])  # a mixed image and its audio are positives of each other


def render(scene, seed, domain):
    """Image and audio of a scene without noise or clutter, from a fresh generator of `seed`."""
    image = synthetic.render_image(scene, 64, np.random.default_rng(seed), domain, noise=0.0, clutter=0.0)
    audio = synthetic.render_audio(scene, 16000, 1.5, np.random.default_rng(seed), domain, noise=0.0, clutter=0.0)
    return image, audio


def test_two_object_scenes_split_exactly_into_halves():
    """Why the mix is exact for two objects: changing one object changes only its half, in image and audio."""
    objects = [synthetic.SceneObject(s, c, z) for s in ("circle", "cross") for c in ("red", "blue") for z in synthetic.SIZES]
    for seed in range(6):
        pick = np.random.default_rng(seed).choice(len(objects), 3, replace=False)
        left, right, other = (objects[i] for i in pick)
        for domain in ("source", "target"):
            base = render(synthetic.Scene((left, right)), seed, domain)
            for changed, half in ((synthetic.Scene((other, right)), "left"), (synthetic.Scene((left, other)), "right")):
                image, audio = render(changed, seed, domain)
                columns = np.nonzero((image != base[0]).any(axis=(0, 2)))[0]
                samples = np.nonzero(audio != base[1])[0]
                assert len(columns) and ((columns < 32).all() if half == "left" else (columns >= 32).all())
                assert len(samples) and ((samples < 12000).all() if half == "left" else (samples >= 12000).all())


# --- cross_modal_shift ------------------------------------------------------------------------

def test_shift_columns_by_hand():
    image = torch.arange(4.0).view(1, 1, 1, 4).repeat(2, 1, 1, 1)
    assert shift_columns(image, torch.tensor([1, -2])).view(2, 4).tolist() == [[0, 0, 1, 2], [2, 3, 3, 3]]


def test_image_and_audio_move_by_the_same_share(split, raw):
    batch = batch_of(split, ITEMS)
    aug = build("cross_modal_shift", split, max_fraction=0.1)
    out = aug(batch, generator(3))
    wave = _shared.state(out)["waveform"]
    moved = []
    for row, item in enumerate(ITEMS):
        image = batch.inputs["image"]["pixel_values"][row:row + 1]
        found = [d for d in range(-3, 4) if torch.equal(shift_columns(image, torch.tensor([d]))[0],
                                                       out.inputs["image"]["pixel_values"][row])]
        assert found, row
        d = found[0] if len(found) == 1 else next(d for d in found if d == 0)
        samples = round(d / 32 * 8000)
        assert torch.equal(wave[row], shift_rows(raw[item:item + 1], torch.tensor([samples]), "zero")[0])
        moved.append(d)
    assert len(set(moved)) > 2 and max(abs(d) for d in moved) <= 3  # round(0.1 · 32)
    assert torch.equal(out.inputs["text"]["input_ids"], batch.inputs["text"]["input_ids"])
    assert all(torch.equal(out.item_ids[m], batch.item_ids[m]) for m in batch.item_ids)  # a positive of itself
    assert same_batches(aug(batch, generator(3)), out)


def test_cross_modal_shift_needs_image_and_audio_rows_of_the_same_items(split):
    out = build("mix_negatives", split, share=0.5)(batch_of(split, ITEMS), generator(0))
    build("cross_modal_shift", split)(out, generator())  # mixed rows have the same ids in both: fine
    out.item_ids["audio"] = out.item_ids["audio"].flip(0)
    with pytest.raises(ValueError, match="not the same items"):
        build("cross_modal_shift", split)(out, generator())
