"""Items without some modality: which ones are dropped, and the availability patterns."""
import numpy as np

from xmbench.config import resolve
from xmbench.data.missing import drop_modalities, patterns
from xmbench.data.sources import load_split
from xmbench.data.synthetic import make_split

KW = dict(image_size=32, audio_seconds=0.5)


def test_dropped_items_are_exact_in_number_disjoint_and_zeroed():
    raw = make_split("train", 20, "target", **KW)
    ragged = drop_modalities(raw, {"image": 0.3, "audio": 0.25}, seed=0)
    no_image, no_audio = ~ragged.present["image"], ~ragged.present["audio"]
    assert no_image.sum() == 6 and no_audio.sum() == 5 and not (no_image & no_audio).any()
    assert ragged.present["text"].all() and ragged.captions == raw.captions
    assert (ragged.images[no_image] == 0).all() and np.array_equal(ragged.images[~no_image], raw.images[~no_image])
    assert (ragged.audio[no_audio] == 0).all() and np.array_equal(ragged.audio[~no_audio], raw.audio[~no_audio])
    assert raw.present is None and raw.images.any(axis=(1, 2, 3)).all()  # the original is left alone
    again, other = (drop_modalities(raw, {"image": 0.3, "audio": 0.25}, seed=s) for s in (0, 1))
    assert np.array_equal(again.present["image"], ragged.present["image"])
    assert not np.array_equal(other.present["image"], ragged.present["image"])


def test_a_dropped_caption_keeps_its_place():
    raw = make_split("train", 4, "target", **KW)
    ragged = drop_modalities(raw, {"text": 0.5}, seed=0)
    gone = np.flatnonzero(~ragged.present["text"])
    assert len(gone) == 2 and all(ragged.captions[i] == [""] * len(raw.captions[i]) for i in gone)


def test_patterns_group_items_by_what_they_have():
    present = {"text": [True] * 4, "image": [True, False, True, True], "audio": [True, True, False, True]}
    numbers, names = patterns(present, 4)
    assert [names[k] for k in numbers] == ["text+image+audio", "text+audio", "text+image", "text+image+audio"]
    numbers, names = patterns(None, 3)
    assert numbers.tolist() == [0, 0, 0] and names == ["text+image+audio"]


def test_the_builtin_set_drops_modalities_from_training_only(tiny_base):
    config = resolve(tiny_base, {"data.missing": {"audio": 0.25}}).data
    train, test = load_split(config, "train"), load_split(config, "test")
    assert int((~train.present["audio"]).sum()) == round(0.25 * len(train)) and train.present["image"].all()
    assert test.present is None  # every direction measured on the same, complete items
    complete = load_split(resolve(tiny_base).data, "train")
    assert complete.present is None and complete.ids == train.ids
