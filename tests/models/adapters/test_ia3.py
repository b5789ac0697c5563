"""(IA)³: one scaling vector per targeted layer, input-side for the FFN's mlp_out; starts as the identity."""
import torch

from tests.models.adapters._helpers import (
    MODALITIES,
    adapter_config,
    assert_round_trip,
    assert_starts_unadapted,
    backbone,
    build,
    train_steps,
    trainable,
)


def test_vectors_on_key_value_and_ffn_input_only(tiny_base):
    config = adapter_config(tiny_base, method="ia3")
    model = build(config)
    for m, ffn in (("text", "output.dense"), ("image", "mlp.fc2"), ("audio", "mlp.fc2")):
        names = trainable(model, m)
        assert names and all(n.endswith(".ia3_l.default") for n in names)
        assert len(names) == 2 * 3  # layers × (key, value, mlp_out)
        shapes = {n.split("base_model.model.")[1].removesuffix(".ia3_l.default"): p.shape
                  for n, p in model.named_parameters() if n in names}
        # attention vectors scale the 32 outputs; the FFN vector scales fc2's 64 inputs (peft's feedforward)
        assert shapes[f"{'encoder.layer' if m == 'text' else 'layers'}.0.{ffn}"] == (1, 64)
        assert sum(s == (32, 1) for s in shapes.values()) == 4
        assert not backbone(model, m).peft_config["default"].feedforward_modules & {"attention.output.dense"}
    assert_starts_unadapted(model, config)


def test_ia3_output_role_in_bert_is_not_taken_for_the_ffn(tiny_base):
    model = build(adapter_config(tiny_base, method="ia3", targets=["output", "mlp_out"], layers=[0]), ("text",))
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters() if p.requires_grad and n.startswith("towers.")}
    assert shapes == {"towers.text.backbone.base_model.model.encoder.layer.0.attention.output.dense.ia3_l.default": (32, 1),
                      "towers.text.backbone.base_model.model.encoder.layer.0.output.dense.ia3_l.default": (1, 64)}


def test_ia3_trains_and_round_trips(tiny_base, tmp_path):
    config = adapter_config(tiny_base, method="ia3", layers="top:1")
    model = build(config)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if n in trainable(model)}
    train_steps(model, config, steps=3)
    assert all(not torch.equal(p, dict(model.named_parameters())[n]) for n, p in before.items())
    assert all(".layers.1." in n or ".layer.1." in n for n in before)
    assert_round_trip(model, config, tmp_path, MODALITIES)
