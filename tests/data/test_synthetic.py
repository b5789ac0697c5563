import numpy as np

from xmbench.data.synthetic import HELD_OUT, Scene, SceneObject, make_split, perturb, random_scene

KW = dict(image_size=32, audio_seconds=0.5)


def test_same_seed_gives_identical_data_and_other_seeds_differ():
    a, b = make_split("train", 12, "target", seed=3, **KW), make_split("train", 12, "target", seed=3, **KW)
    assert a.captions == b.captions
    assert np.array_equal(a.images, b.images) and np.array_equal(a.audio, b.audio)
    c = make_split("train", 12, "target", seed=4, **KW)
    assert a.captions != c.captions


def test_exact_first_item_under_seed_zero():
    split = make_split("test", 3, "source", seed=0, **KW)
    assert split.ids == ["source-test-00000", "source-test-00001", "source-test-00002"]
    assert split.captions[0] == ["just a large purple cross", "a picture of a large purple cross",
                                 "a large purple cross", "a picture of a large purple cross", "a large purple cross"]
    # item 1 is a hard negative of item 0: the same scene with one attribute changed
    assert split.captions[1] == ["just a large orange cross", "a large orange cross",
                                 "a picture of a large orange cross", "a large orange cross",
                                 "a picture of a large orange cross"]


def test_shapes_ranges_and_five_captions():
    split = make_split("val", 10, "source", seed=0, image_size=40, sample_rate=8000, audio_seconds=1.0)
    assert split.images.shape == (10, 40, 40, 3) and split.images.dtype == np.uint8
    assert split.audio.shape == (10, 8000) and split.audio.dtype == np.float32
    assert np.abs(split.audio).max() <= 1.0
    assert all(len(c) == 5 and all(c) for c in split.captions)
    assert split.modalities == ("text", "image", "audio")


def test_held_out_combinations_separate_the_domains():
    rng = np.random.default_rng(0)
    for _ in range(200):
        source = random_scene(rng, "source", 3)
        target = random_scene(rng, "target", 3)
        assert not any((o.shape, o.colour) in HELD_OUT for o in source.objects)
        assert any((o.shape, o.colour) in HELD_OUT for o in target.objects)


def test_perturbation_is_a_hard_negative():
    rng = np.random.default_rng(1)
    scene = Scene((SceneObject("circle", "red", "small"), SceneObject("square", "blue", "large")))
    for _ in range(50):
        other = perturb(scene, rng, "source")
        assert other != scene and len(other.objects) == 2
        differences = sum(a != b for a, b in zip(scene.objects, other.objects))
        swapped = other.objects == scene.objects[::-1]
        assert swapped or differences == 1


def test_target_domain_is_noisier_than_source():
    source, target = make_split("train", 20, "source", **KW), make_split("train", 20, "target", **KW)
    # background noise: the standard deviation of a flat 4×4 corner patch
    corner = lambda s: s.images[:, :4, :4].astype(float).std(axis=(1, 2)).mean()  # noqa: E731
    assert corner(target) > 2 * corner(source)
    assert set(w for c in target.captions for t in c for w in t.split()).isdisjoint({"then"})
