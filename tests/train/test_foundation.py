"""The foundation cache key: everything that shapes the pretrained weights, nothing that does not."""
from xmbench.config import resolve
from xmbench.train.foundation import foundation_key


def test_the_key_follows_the_pretraining_loss_and_pairs():
    reference = foundation_key(resolve({}))
    assert foundation_key(resolve({}, {"train.pairs": ["text-image", "text-audio"]})) != reference
    assert foundation_key(resolve({}, {"foundation.steps": 10})) != reference


def test_what_does_not_shape_the_weights_keeps_the_key():
    reference = foundation_key(resolve({}))
    for overrides in ({"model.*.adapter.rank": 4}, {"model.image.adapter.method": "full"}, {"train.steps": 7},
                      {"data.n_test": 99}, {"foundation.cache_dir": "/elsewhere"}, {"train.lr": 0.01},
                      {"profile.latency": True}, {"data.missing": {"image": 0.4}}):  # pretraining data is complete
        assert foundation_key(resolve({}, overrides)) == reference, overrides


def test_a_new_projection_adapts_on_the_same_pretrained_towers(tiny_base):
    """Heads, embedding size and temperature do not change the foundation: the variant's new parts start fresh."""
    import torch

    from xmbench.models.reference import build_reference

    reference = resolve({})
    for overrides in ({"model.head": "mlp"}, {"model.embed_dim": 256}, {"model.temperature": "per_pair"},
                      {"model.audio.head": "layernorm_linear"}, {"model.pretrained_projection": False}):
        assert foundation_key(resolve({}, overrides)) == foundation_key(reference), overrides
    config = resolve(tiny_base)
    torch.manual_seed(0)
    state = build_reference(config, ("text", "image", "audio"), adapters=dict.fromkeys(("text", "image", "audio"), "full"))
    state = state.state_dict()  # as the foundation stage saves it: plain towers, no adapters
    fresh = build_reference(resolve(tiny_base, {"model.embed_dim": 8, "model.temperature": "per_pair"}),
                            ("text", "image", "audio"), state)
    assert fresh.fresh_parts == ["heads.audio", "heads.image", "heads.text", "temperature.log_scales"]
    assert torch.equal(fresh.state_dict()["towers.image.backbone.base_model.model.embeddings.cls_token"],
                       state["towers.image.backbone.embeddings.cls_token"])


def test_the_reference_projection_can_start_fresh_as_a_control(tiny_base):
    """model.pretrained_projection = false: the same linear heads and temperature, initialised as a new head is."""
    import torch

    from xmbench.models.reference import build_reference

    modalities = ("text", "image", "audio")
    torch.manual_seed(0)
    state = build_reference(resolve(tiny_base), modalities, adapters=dict.fromkeys(modalities, "full")).state_dict()
    torch.manual_seed(1)
    loaded = build_reference(resolve(tiny_base), modalities, state)
    torch.manual_seed(1)
    fresh = build_reference(resolve(tiny_base, {"model.pretrained_projection": False}), modalities, state)
    torch.manual_seed(1)
    unloaded = build_reference(resolve(tiny_base), modalities)  # what a fresh head starts from with this seed
    assert loaded.fresh_parts == [] and fresh.fresh_parts == ["heads.audio", "heads.image", "heads.text", "temperature.log_scale"]
    assert torch.equal(loaded.heads["text"].weight, state["heads.text.weight"])
    assert torch.equal(fresh.heads["text"].weight, unloaded.heads["text"].weight)
    assert torch.equal(fresh.state_dict()["towers.text.backbone.base_model.model.embeddings.word_embeddings.weight"],
                       state["towers.text.backbone.embeddings.word_embeddings.weight"])
