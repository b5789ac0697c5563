import dataclasses

import pytest

from xmbench.config import RunConfig, TrainConfig, from_dict, resolve
from xmbench.errors import ConfigError
from xmbench.registry import Choice
from xmbench.schema import flatten, load


def test_defaults_are_the_reference_model():
    config = resolve({})
    assert config.model.embed_dim == 512
    assert [config.model.text.arch, config.model.image.arch, config.model.audio.arch] == ["minilm", "vit", "ast"]
    adapters = [getattr(config.model, m).adapter for m in ("text", "image", "audio")]
    assert {a.name for a in adapters} == {"lora"} and {a.options.rank for a in adapters} == {8}
    assert config.model.text.adapter.options.targets == ["query", "value"]
    assert config.train.loss == Choice("infonce") and config.train.sampler.name == "epoch"
    assert config.train.precision.name == "fp32" and config.transforms == []


def test_unknown_key_names_the_path_and_suggests():
    with pytest.raises(ConfigError, match=r"train\.stepz.*did you mean 'steps'"):
        resolve({"train": {"stepz": 3}})


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigError, match=r"train\.steps: expected int, got str"):
        resolve({"train": {"steps": "many"}})
    with pytest.raises(ConfigError, match=r"train\.steps: expected int, got bool"):
        resolve({"train": {"steps": True}})


def test_int_is_accepted_where_float_is_expected():
    assert resolve({"train": {"lr": 1}}).train.lr == 1.0


def test_choices_and_ranges_are_checked():
    with pytest.raises(ConfigError, match=r"data\.domain: 'targte' is not one of source, target.*did you mean 'target'"):
        resolve({"data": {"domain": "targte"}})
    with pytest.raises(ConfigError, match=r"model\.text\.adapter\.rank: must be positive, got 0"):
        resolve({"model": {"text": {"adapter": {"rank": 0}}}})
    with pytest.raises(ConfigError, match=r"eval\.directions\[1\]: 't2x' is not one of t2i"):
        resolve({"eval": {"directions": ["t2i", "t2x"]}})
    with pytest.raises(ConfigError, match=r"model\.image\.dropout: must be in \[0, 1\), got 1.0"):
        resolve({"model": {"image": {"dropout": 1.0}}})


def test_missing_modalities_are_checked():
    assert resolve({"data": {"missing": {"image": 0.3, "audio": 0.3}}}).data.missing == {"image": 0.3, "audio": 0.3}
    with pytest.raises(ConfigError, match=r"data\.missing\.video: not a modality"):
        resolve({"data": {"missing": {"video": 0.1}}})
    with pytest.raises(ConfigError, match=r"data\.missing: the shares add up to 1\.2; at most 1"):
        resolve({"data": {"missing": {"image": 0.6, "audio": 0.6}}})
    with pytest.raises(ConfigError, match=r"data\.missing\.image: must be in \[0, 1\), got 1.5"):
        resolve({"data": {"missing": {"image": 1.5}}})
    with pytest.raises(ConfigError, match=r"GradCache re-encodes whole micro-batches"):
        resolve({"data": {"missing": {"image": 0.3}}, "train": {"accumulation_mode": "cached", "accumulation": 2}})


def test_unknown_technique_name_fails_with_its_key():
    with pytest.raises(ConfigError, match=r"model\.audio\.adapter: unknown adapter 'lorra' \(did you mean 'lora'\?\)"):
        resolve({"model": {"audio": {"adapter": {"method": "lorra"}}}})
    with pytest.raises(ConfigError, match=r"^train\.loss: unknown loss 'infonec' \(did you mean 'infonce'\?\); known"):
        resolve({}, {"train.loss": "infonec"})
    with pytest.raises(ConfigError, match=r"model\.text\.arch: unknown tower 'bert'"):
        resolve({"model": {"text": {"arch": "bert"}}})


def test_a_technique_is_a_name_or_a_table_of_its_options():
    assert resolve({}, {"model.head": "mlp"}).model.head.options.hidden is None
    head = resolve({"model": {"head": {"hidden": 64, "name": "mlp"}}}).model.head  # the name may come last
    assert head.name == "mlp" and head.options.hidden == 64
    assert resolve({}, {"model.head": "mlp", "model.head.hidden": 32}).model.head.options.hidden == 32
    with pytest.raises(ConfigError, match=r"model\.head\.hidden: must be positive"):
        resolve({}, {"model.head": {"name": "mlp", "hidden": 0}})
    with pytest.raises(ConfigError, match=r"model\.head\.hidden: unknown key 'hidden'; linear takes no options"):
        resolve({}, {"model.head.hidden": 32})


def test_switching_technique_starts_from_its_defaults_and_the_same_one_keeps_options():
    config = resolve({"model": {"*": {"adapter": {"rank": 4}}}},
                     {"model.image.adapter.method": "frozen", "model.text.adapter": {"method": "lora", "alpha": 32}})
    assert config.model.image.adapter == Choice("frozen")
    assert (config.model.text.adapter.options.rank, config.model.text.adapter.options.alpha) == (4, 32.0)
    assert config.model.audio.adapter.options.rank == 4


def test_dict_fields_and_their_checks():
    config = resolve({"train": {"lr_scale": {"tower/*": 0.5, "temperature": 0}, "pair_weights": {"image-audio": 2}}})
    assert config.train.lr_scale == {"tower/*": 0.5, "temperature": 0.0}
    assert config.train.pair_weights == {"image-audio": 2.0}
    with pytest.raises(ConfigError, match=r"train\.pair_weights\.text-sound: not one of the trained pairs"):
        resolve({"train": {"pair_weights": {"text-sound": 1.0}}})
    with pytest.raises(ConfigError, match=r"train\.lr_scale\.head: must be >= 0"):
        resolve({"train": {"lr_scale": {"head": -1}}})


def test_wildcard_override_sets_every_tower():
    config = resolve({}, {"model.*.adapter.rank": 4, "model.text.adapter.rank": 16})
    ranks = [getattr(config.model, m).adapter.options.rank for m in ("text", "image", "audio")]
    assert ranks == [16, 4, 4]


def test_override_of_a_table_or_unknown_key_is_an_error():
    with pytest.raises(ConfigError, match="'text' is a table"):
        resolve({}, {"model.text": 3})
    with pytest.raises(ConfigError, match="did you mean 'lr'"):
        resolve({}, {"train.lrr": 3})


def test_config_id_changes_with_the_config_only():
    assert resolve({}).config_id() == resolve({}).config_id()
    assert resolve({}).config_id() != resolve({"train": {"steps": 7}}).config_id()
    assert resolve({}).config_id() == resolve({"train": {"steps": 100}}).config_id()  # setting a default is no change
    assert resolve({}).config_id() != resolve({}, {"model.text.adapter.rank": 4}).config_id()


def test_config_id_survives_a_new_option_with_a_default():
    """Adding a field to a config class leaves every id as it was; setting it changes the id."""
    grown_train = dataclasses.make_dataclass("TrainConfig", [("new_option", int, dataclasses.field(default=3))],
                                             bases=(TrainConfig,))
    grown = dataclasses.make_dataclass(
        "RunConfig", [("train", grown_train, dataclasses.field(default_factory=grown_train))], bases=(RunConfig,))
    for overrides in ({}, {"train": {"steps": 7}}, {"model": {"image": {"adapter": {"rank": 16}}}}):
        before = resolve(overrides)
        after = load(grown, before.to_dict())
        assert after.train.new_option == 3 and after.config_id() == before.config_id()
        changed = dataclasses.replace(after, train=dataclasses.replace(after.train, new_option=4))
        assert changed.config_id() != before.config_id()


def test_plain_form_round_trips():
    config = resolve({}, {"model.head": {"name": "mlp", "hidden": 8}, "train.lr_scale": {"tower/*": 0.1},
                          "model.audio.adapter.method": "full", "transforms": ["merge"]})
    assert from_dict(config.to_dict()) == config
    assert config.to_dict()["model"]["head"] == {"name": "mlp", "hidden": 8, "activation": "gelu", "dropout": 0.0}
    assert config.to_dict()["model"]["audio"]["adapter"] == {"method": "full"}


def test_flatten_keeps_dotted_keys():
    assert flatten({"a": {"b": 1, "c.d": 2}}) == {"a.b": 1, "a.c.d": 2}
