"""Roles and layers resolve to exactly the intended modules of each tower type (BERT, ViT, AST)."""
import pytest
from transformers import BertConfig, BertModel

from tests.models.adapters._helpers import MODALITIES, backbone, frozen_twin
from xmbench.errors import ConfigError
from xmbench.models.adapters._targets import check_layers, resolve_modules, resolve_targets, select_layers

BERT = {"query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
        "output": "attention.output.dense", "mlp_in": "intermediate.dense", "mlp_out": "output.dense"}
VIT = {"query": "attention.q_proj", "key": "attention.k_proj", "value": "attention.v_proj",
       "output": "attention.o_proj", "mlp_in": "mlp.fc1", "mlp_out": "mlp.fc2"}


@pytest.fixture(scope="module")
def towers():
    from tests.conftest import TINY_BASE
    from xmbench.config import resolve

    model = frozen_twin(resolve(TINY_BASE))
    return {m: backbone(model, m) for m in MODALITIES}


@pytest.mark.parametrize("role", list(BERT))
def test_each_role_is_one_linear_per_layer_on_every_tower(towers, role):
    for modality, paths, prefix in (("text", BERT, "encoder.layer"), ("image", VIT, "layers"), ("audio", VIT, "layers")):
        names = resolve_modules(towers[modality], [role])
        assert names == [f"{prefix}.{i}.{paths[role]}" for i in range(2)], modality
        assert all(type(towers[modality].get_submodule(n)).__name__ == "Linear" for n in names)


def test_attention_output_and_ffn_output_do_not_collide_in_bert(towers):
    text = towers["text"]
    assert resolve_modules(text, ["output"]) == ["encoder.layer.0.attention.output.dense",
                                                 "encoder.layer.1.attention.output.dense"]
    assert resolve_modules(text, ["mlp_out"]) == ["encoder.layer.0.output.dense", "encoder.layer.1.output.dense"]
    # peft matches a listed name as a suffix: BERT's FFN output needs full names, the attention output does not
    assert resolve_targets(text, ["output"]) == ["attention.output.dense"]
    assert resolve_targets(text, ["mlp_out"]) == ["encoder.layer.0.output.dense", "encoder.layer.1.output.dense"]
    assert resolve_targets(towers["image"], ["output", "mlp_in", "mlp_out"]) == ["o_proj", "fc1", "fc2"]


def test_the_reference_targets_keep_their_short_names(towers):
    assert resolve_targets(towers["text"], ["query", "value"]) == ["query", "value"]
    assert resolve_targets(towers["image"], ["query", "key", "value"]) == ["q_proj", "k_proj", "v_proj"]
    assert resolve_targets(towers["audio"], ["query", "value"]) == ["q_proj", "v_proj"]


def test_layers_pick_top_bottom_or_listed_layers():
    assert select_layers("all", 4) == [0, 1, 2, 3]
    assert select_layers("top:2", 4) == [2, 3]
    assert select_layers("bottom:1", 4) == [0]
    assert select_layers([3, 1, 1], 4) == [1, 3]
    four = BertModel(BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                                intermediate_size=32), add_pooling_layer=False)
    assert resolve_modules(four, ["query", "mlp_out"], "top:2") == [
        "encoder.layer.2.attention.self.query", "encoder.layer.2.output.dense",
        "encoder.layer.3.attention.self.query", "encoder.layer.3.output.dense"]
    assert resolve_targets(four, ["value"], [0, 2]) == ["encoder.layer.0.attention.self.value",
                                                        "encoder.layer.2.attention.self.value"]
    assert resolve_modules(four, ["dense"], [1]) == ["encoder.layer.1.attention.output.dense",
                                                     "encoder.layer.1.intermediate.dense", "encoder.layer.1.output.dense"]


def test_bad_layers_and_targets_are_config_errors(towers):
    for bad in ("top", "top:0", "middle:2", [], [-1]):
        with pytest.raises(ConfigError, match="layers"):
            check_layers(bad)
    with pytest.raises(ConfigError, match="asks for 3 layers; the backbone has 2"):
        resolve_modules(towers["image"], ["query"], "top:3")
    with pytest.raises(ConfigError, match="index 2 is out of range"):
        resolve_modules(towers["audio"], ["query"], [0, 2])
    with pytest.raises(ConfigError, match="'nothing' matches no module"):
        resolve_targets(towers["text"], ["nothing"])
