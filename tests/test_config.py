import pytest

from xmbench.config import RunConfig, apply_overrides, flatten, resolve
from xmbench.errors import ConfigError


def test_defaults_are_the_reference_model():
    config = resolve({})
    assert config.model.embed_dim == 512
    assert [config.model.text.arch, config.model.image.arch, config.model.audio.arch] == ["minilm", "vit", "ast"]
    assert {config.model.text.adapter.rank, config.model.image.adapter.rank, config.model.audio.adapter.rank} == {8}
    assert config.model.text.adapter.targets == ["query", "value"]
    assert config.train.loss == "infonce"


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
    with pytest.raises(ConfigError, match=r"data\.domain: 'targte'.*did you mean 'target'"):
        resolve({"data": {"domain": "targte"}})
    with pytest.raises(ConfigError, match=r"model\.text\.adapter\.rank: must be positive"):
        resolve({"model": {"text": {"adapter": {"rank": 0}}}})
    with pytest.raises(ConfigError, match=r"eval\.directions: unknown direction 't2x'"):
        resolve({"eval": {"directions": ["t2x"]}})


def test_unknown_technique_name_fails_validation():
    with pytest.raises(ConfigError, match=r"unknown adapter 'lorra'.*did you mean 'lora'"):
        resolve({"model": {"audio": {"adapter": {"method": "lorra"}}}})


def test_wildcard_override_sets_every_tower():
    config = resolve({}, {"model.*.adapter.rank": 4, "model.text.adapter.rank": 16})
    assert (config.model.text.adapter.rank, config.model.image.adapter.rank, config.model.audio.adapter.rank) == (16, 4, 4)


def test_override_of_a_table_or_unknown_key_is_an_error():
    tree = RunConfig().to_dict()
    with pytest.raises(ConfigError, match="is a table"):
        apply_overrides(tree, {"model.text": 3})
    with pytest.raises(ConfigError, match="did you mean 'lr'"):
        apply_overrides(tree, {"train.lrr": 3})


def test_config_id_changes_with_the_config_only():
    assert resolve({}).config_id() == resolve({}).config_id()
    assert resolve({}).config_id() != resolve({"train": {"steps": 7}}).config_id()


def test_flatten_keeps_dotted_keys():
    assert flatten({"a": {"b": 1, "c.d": 2}}) == {"a.b": 1, "a.c.d": 2}
