"""quantize: exactly the chosen components change, embeddings stay close, costs and refusals are clear."""
import copy
import importlib.util

import pytest
import torch
from torch import nn
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.errors import ConfigError
from xmbench.eval.retrieval import encode_split
from xmbench.models import capabilities
from xmbench.models.reference import build_reference
from xmbench.registry import TRANSFORMS
from xmbench.suite import parse_suite

MODALITIES = ("text", "image", "audio")


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def quantize(model, **options):
    return TRANSFORMS.bind(TRANSFORMS.default("quantize", **options))(model)


@pytest.fixture
def trained_like(tiny_base):
    """A tiny model whose LoRA updates are well away from zero (merging has work to do), its test split and embeddings."""
    config = resolve(tiny_base)
    torch.manual_seed(0)
    model = build_reference(config, MODALITIES).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.3, generator=torch.Generator().manual_seed(1))
    split = load_split(config.data, "test")
    return model, split, {m: encode_split(model, split, m) for m in MODALITIES}


def linears(module, kind=nn.Linear) -> list[str]:
    return [n for n, m in module.named_modules() if type(m) is kind]


def close(model, split, before, modality) -> float:
    return float(torch.nn.functional.cosine_similarity(encode_split(model, split, modality), before[modality]).min())


def test_dynamic_int8_replaces_exactly_the_chosen_components_linear_layers(trained_like):
    model, split, before = trained_like
    merged_image = TRANSFORMS.bind(TRANSFORMS.default("merge"))(copy.deepcopy(model.towers["image"]))
    expected = linears(merged_image)  # every Linear of the image tower, its LoRA folded in
    untouched = {n: p.detach().clone() for n, p in model.named_parameters()
                 if not n.startswith(("towers.image.", "heads.text."))}
    quantized = quantize(model, components=["tower/image", "head/text"])
    assert quantized.quantized == {"tower/image": "dynamic_int8", "head/text": "dynamic_int8"}
    image = quantized.towers["image"]
    assert linears(image, DynamicLinear) == expected and linears(image) == []
    assert not any("lora_" in n for n, _ in image.named_parameters())  # merged before quantising
    assert type(quantized.heads["text"]) is DynamicLinear  # a component that is itself a Linear is swapped too
    for name, component in capabilities.components(quantized).items():
        if name not in ("tower/image", "head/text"):
            assert linears(component, DynamicLinear) == [], name
    after = dict(quantized.named_parameters())
    assert all(torch.equal(after[n], p) for n, p in untouched.items())
    assert torch.equal(encode_split(quantized, split, "audio"), before["audio"])
    for modality in ("text", "image"):
        assert close(quantized, split, before, modality) >= 0.99, modality


def test_without_merging_the_layers_inside_peft_adapters_stay_fp32(trained_like):
    model, split, before = trained_like
    quantized = quantize(model, components=["tower/text"], merge_first=False)
    text = quantized.towers["text"]
    kept = linears(text)
    assert kept and all(".base_layer" in n or ".lora_" in n for n in kept)
    assert any(n.endswith("attention.self.key") for n in linears(text, DynamicLinear))
    assert close(quantized, split, before, "text") >= 0.99


def test_weight_scales_per_channel_by_default_and_excluded_layers_stay_fp32(trained_like):
    model, split, before = trained_like
    per_channel = quantize(copy.deepcopy(model), components=["tower/image"], exclude=["*.layers.?.mlp.fc2"])
    image = per_channel.towers["image"]
    quantized = {n: m for n, m in image.named_modules() if type(m) is DynamicLinear}
    assert {m.weight().qscheme() for m in quantized.values()} == {torch.per_channel_affine}
    assert linears(image) == ["backbone.layers.0.mlp.fc2", "backbone.layers.1.mlp.fc2"]  # excluded: still nn.Linear
    assert close(per_channel, split, before, "image") >= 0.99
    per_layer = quantize(copy.deepcopy(model), components=["tower/image"], per_channel=False)
    layers = [m for m in per_layer.towers["image"].modules() if type(m) is DynamicLinear]
    assert {m.weight().qscheme() for m in layers} == {torch.per_tensor_affine}
    with pytest.raises(ConfigError, match="exclude: '\\*.fc3' matches no Linear layer of tower/image"):
        quantize(copy.deepcopy(model), components=["tower/image"], exclude=["*.fc3"])
    with pytest.raises(ConfigError, match="dynamic_int8 only"):
        quantize(copy.deepcopy(model), method="bf16", exclude=["*.fc2"])


@pytest.mark.parametrize("method, dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_float_casts_change_the_chosen_weights_dtype_and_keep_fp32_embeddings(trained_like, method, dtype):
    model, split, before = trained_like
    quantized = quantize(model, method=method, components=["tower/audio", "head/*"])
    dtypes = {n: p.dtype for n, p in quantized.named_parameters()}
    assert all(d == dtype for n, d in dtypes.items() if n.startswith(("towers.audio.", "heads.")))
    assert all(d == torch.float32 for n, d in dtypes.items() if n.startswith(("towers.text.", "towers.image.")))
    for modality in MODALITIES:
        embedded = encode_split(quantized, split, modality)
        assert embedded.dtype == torch.float32
        assert close(quantized, split, before, modality) >= 0.99, modality


def test_refusals_are_clear(trained_like):
    model, _, _ = trained_like
    with pytest.raises(ConfigError, match="'tower/txt' matches none of the model's components .*tower/text"):
        quantize(model, components=["tower/txt"])
    bf16_heads = quantize(copy.deepcopy(model), method="bf16", components=["head/*"])
    assert quantize(bf16_heads, components=["tower/*"]).quantized == {  # transforms chain over other components
        "head/text": "bf16", "head/image": "bf16", "head/audio": "bf16",
        "tower/text": "dynamic_int8", "tower/image": "dynamic_int8", "tower/audio": "dynamic_int8"}
    with pytest.raises(ConfigError, match="head/text is already quantised \\(bf16\\)"):
        quantize(bf16_heads, components=["head/text"])
    with pytest.raises(ConfigError, match="at least one component"):
        TRANSFORMS.default("quantize", components=[])
    if importlib.util.find_spec("torchao") is None:
        with pytest.raises(ConfigError, match="int8_weight_only needs torchao, which is not installed"):
            quantize(model, method="int8_weight_only")
    elif not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="needs CUDA"):
            quantize(model, method="int4_weight_only")


def test_costs_of_a_quantized_model_as_the_record_counts_them(trained_like):
    """Packed int8 weights are not Parameters: total_params drops by the quantised Linear weights (see the report)."""
    model, _, _ = trained_like
    merged = TRANSFORMS.bind(TRANSFORMS.default("merge"))(copy.deepcopy(model))
    linear_weights = sum(m.weight.numel() + m.bias.numel() for m in merged.modules() if type(m) is nn.Linear)
    quantized = quantize(model, components=["*"])
    assert capabilities.count_parameters(quantized) == capabilities.count_parameters(merged) - linear_weights


def test_a_suite_names_it_with_options():
    suite = parse_suite({"suite": {"name": "q"}, "variants": {
        "int8": {"transforms": [{"name": "quantize", "components": ["tower/*", "head/image"]}]},
        "bf16": {"transforms": [{"name": "quantize", "method": "bf16"}]}}})
    assert [c.options.method for v in suite.variants for c in v.config.transforms] == ["dynamic_int8", "bf16"]
    with pytest.raises(ConfigError, match="method"):
        parse_suite({"suite": {"name": "q"}, "variants": {"x": {"transforms": [{"name": "quantize", "method": "int3"}]}}})
