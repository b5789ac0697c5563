"""LoRA's roles, layer selection and DoRA: adapters exactly where asked, nothing else trains, artifacts round-trip."""
import torch

from tests.models.adapters._helpers import MODALITIES, adapter_config, assert_round_trip, backbone, build, train_steps, trainable
from xmbench.config import resolve


def adapted_modules(model, modality):
    """Names (inside the backbone) of the modules that carry a LoRA adapter."""
    names = {n.removeprefix(f"towers.{modality}.backbone.base_model.model.").split(".lora_")[0]
             for n in trainable(model, modality)}
    return sorted(names)


def test_default_is_the_reference_lora_unchanged(tiny_base):
    model = build(resolve(tiny_base))
    for m, short in (("text", {"query", "value"}), ("image", {"q_proj", "v_proj"}), ("audio", {"q_proj", "v_proj"})):
        config = backbone(model, m).peft_config["default"]
        assert set(config.target_modules) == short and config.r == 8 and config.lora_alpha == 16
        assert not config.use_dora and config.layers_to_transform is None


def test_layers_restrict_adapters_and_other_layers_stay_untouched(tiny_base):
    config = adapter_config(tiny_base, method="lora", layers="top:1", targets=["query", "value"])
    model = build(config)
    assert adapted_modules(model, "text") == ["encoder.layer.1.attention.self.query", "encoder.layer.1.attention.self.value"]
    assert adapted_modules(model, "image") == ["layers.1.attention.q_proj", "layers.1.attention.v_proj"]
    with torch.no_grad():  # B away from zero so the training step moves A too
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train_steps(model, config, steps=2)
    after = dict(model.named_parameters())
    for m, first in (("text", ".encoder.layer.0."), ("image", ".layers.0."), ("audio", ".layers.0.")):
        layer0 = [n for n in before if n.startswith(f"towers.{m}.") and first in n]
        assert layer0 and all(torch.equal(before[n], after[n]) for n in layer0), m
        assert any(not torch.equal(before[n], after[n]) for n in trainable(model, m)), m

    listed = build(adapter_config(tiny_base, method="lora", layers=[0], targets=["key"]))
    assert adapted_modules(listed, "audio") == ["layers.0.attention.k_proj"]


def test_output_and_mlp_roles_adapt_exactly_their_modules(tiny_base):
    model = build(adapter_config(tiny_base, method="lora", targets=["output", "mlp_in", "mlp_out"], layers=[1]))
    assert adapted_modules(model, "text") == ["encoder.layer.1.attention.output.dense", "encoder.layer.1.intermediate.dense",
                                              "encoder.layer.1.output.dense"]
    for m in ("image", "audio"):
        assert adapted_modules(model, m) == ["layers.1.attention.o_proj", "layers.1.mlp.fc1", "layers.1.mlp.fc2"]
    ffn_only = build(adapter_config(tiny_base, method="lora", targets=["mlp_out"]), ("text",))
    assert adapted_modules(ffn_only, "text") == ["encoder.layer.0.output.dense", "encoder.layer.1.output.dense"]


def test_dora_trains_only_its_own_parameters_and_round_trips(tiny_base, tmp_path):
    config = adapter_config(tiny_base, method="lora", use_dora=True, rank=4, targets=["query", "output"])
    model = build(config)
    names = trainable(model)
    assert {n.split(".")[-2] for n in names} == {"default"}
    assert {n.split(".")[-3] for n in names} == {"lora_A", "lora_B", "lora_magnitude_vector"}
    assert len([n for n in names if "lora_magnitude_vector" in n]) == 3 * 2 * 2  # towers × layers × targets
    assert all(backbone(model, m).peft_config["default"].use_dora for m in MODALITIES)
    train_steps(model, config, steps=3)
    assert_round_trip(model, config, tmp_path)


def test_lora_on_roles_and_layers_round_trips(tiny_base, tmp_path):
    config = adapter_config(tiny_base, method="lora", targets=["key", "mlp_out"], layers="bottom:1", rank=2)
    model = build(config)
    train_steps(model, config, steps=3)
    assert_round_trip(model, config, tmp_path)
