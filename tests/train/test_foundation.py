"""The foundation cache key: everything that shapes the pretrained weights, nothing that does not."""
from xmbench.config import resolve
from xmbench.train.foundation import foundation_key


def test_the_key_follows_the_pretraining_loss_and_pairs():
    reference = foundation_key(resolve({}))
    assert foundation_key(resolve({}, {"train.pairs": ["text-image", "text-audio"]})) != reference
    assert foundation_key(resolve({}, {"foundation.steps": 10})) != reference
    assert foundation_key(resolve({}, {"model.embed_dim": 256})) != reference


def test_what_does_not_shape_the_weights_keeps_the_key():
    reference = foundation_key(resolve({}))
    for overrides in ({"model.*.adapter.rank": 4}, {"model.image.adapter.method": "full"}, {"train.steps": 7},
                      {"data.n_test": 99}, {"foundation.cache_dir": "/elsewhere"}, {"train.lr": 0.01},
                      {"profile.latency": True}):
        assert foundation_key(resolve({}, overrides)) == reference, overrides
