"""Towers from local Hugging Face checkpoints, per family (issue #23): each of the 11 tiny checkpoints of
xmbench.examples.tiny_checkpoints as its modality's tower (arch = "hf"), the other two modalities on the
tiny built-in towers: the processor's tensors, LoRA/DoRA/bottleneck adapters by role in exactly the
asked layers, unfreeze_top and layer decay on exactly the right parameters, a short run through merge
and int8 quantisation to finite metrics, pooled vectors equal to brute-force computations, and the
refusals `xmbench validate` reports (roles that resolve to nothing, an unusable sampling rate).
"""
from __future__ import annotations

import copy
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY_BASE
from xmbench.config import DataConfig, TowerConfig, resolve
from xmbench.data.sources import load_raw, load_split
from xmbench.examples import tiny_checkpoints
from xmbench.examples.tiny_checkpoints import BOS, EOS, MODALITY, SAMPLE_RATE
from xmbench.models.hf_tower import hf
from xmbench.models.reference import build_reference
from xmbench.train.hooks import Callback

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = ["bert", "roberta", "clip_text", "clip_vision", "vit", "dinov2", "ast", "wav2vec2", "whisper",
            "clap_text", "clap_audio"]
MODALITIES = ("text", "image", "audio")

# Each role's module in a layer, written out per family (not derived from xmbench's own tables)
BERT = dict(query="attention.self.query", key="attention.self.key", value="attention.self.value",
            output="attention.output.dense", mlp_in="intermediate.dense", mlp_out="output.dense")
CLIP = dict(query="self_attn.q_proj", key="self_attn.k_proj", value="self_attn.v_proj", output="self_attn.out_proj",
            mlp_in="mlp.fc1", mlp_out="mlp.fc2")
VIT = dict(query="attention.q_proj", key="attention.k_proj", value="attention.v_proj", output="attention.o_proj",
           mlp_in="mlp.fc1", mlp_out="mlp.fc2")
WAV2VEC2 = dict(query="attention.q_proj", key="attention.k_proj", value="attention.v_proj",
                output="attention.out_proj", mlp_in="feed_forward.intermediate_dense",
                mlp_out="feed_forward.output_dense")
WHISPER = dict(query="self_attn.q_proj", key="self_attn.k_proj", value="self_attn.v_proj",
               output="self_attn.out_proj", mlp_in="fc1", mlp_out="fc2")
HTSAT = {role: f"blocks.0.{path}" for role, path in BERT.items()}  # CLAP audio: a layer is a stage of Swin blocks
# family → (the top (second of two) layer's prefix inside the backbone, its roles' modules)
TOP = {"bert": ("encoder.layer.1.", BERT), "roberta": ("encoder.layer.1.", BERT), "clap_text": ("encoder.layer.1.", BERT),
       "clip_text": ("encoder.layers.1.", CLIP), "clip_vision": ("encoder.layers.1.", CLIP),
       "vit": ("layers.1.", VIT), "ast": ("layers.1.", VIT), "dinov2": ("encoder.layer.1.", VIT),
       "wav2vec2": ("encoder.layers.1.", WAV2VEC2), "whisper": ("layers.1.", WHISPER),
       "clap_audio": ("audio_encoder.layers.1.", HTSAT)}
# Outside every layer and above the last one: what unfreeze_top's final_norm adds (BERT-likes' pooler too)
POOLER = ["pooler.dense.weight", "pooler.dense.bias"]
ABOVE = {"bert": POOLER, "roberta": POOLER, "clap_text": POOLER,
         "clip_text": ["final_layer_norm.weight", "final_layer_norm.bias"],
         "clip_vision": ["post_layernorm.weight", "post_layernorm.bias"],
         "vit": ["layernorm.weight", "layernorm.bias", *POOLER], "dinov2": ["layernorm.weight", "layernorm.bias"],
         "ast": ["layernorm.weight", "layernorm.bias"], "wav2vec2": [],  # its encoder.layer_norm comes before the layers
         "whisper": ["layer_norm.weight", "layer_norm.bias"],
         "clap_audio": ["audio_encoder.norm.weight", "audio_encoder.norm.bias"]}
LAYER = re.compile(r"(?:^|\.)layers?\.(\d+)\.")

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """checkpoint(family) → the folder of its tiny checkpoint, saved once per session (on first use)."""
    root = tmp_path_factory.mktemp("tiny-checkpoints")
    saved: dict[str, Path] = {}

    def folder(family: str) -> Path:
        if family not in saved:
            saved[family] = tiny_checkpoints.save(family, root / family)
        return saved[family]

    return folder


def family_config(path: Path, family: str, *overrides: dict, **tower):
    """TINY_BASE with the family's tower as its modality's tower (the others tiny built-in ones)."""
    base = copy.deepcopy(TINY_BASE)
    base["model"][MODALITY[family]] = {"arch": "hf", "path": str(path), **tower}
    return resolve(base, *overrides)


def build(config, modalities=MODALITIES, seed: int = 0):
    torch.manual_seed(seed)
    return build_reference(config, modalities)


def backbone_names(module, prefix: str = "") -> list[str]:
    return [n.removeprefix(prefix) for n, _ in module.named_parameters()]


def layer_parameters(backbone, layer: int) -> set[str]:
    """Brute force: the backbone's parameters whose name holds `.layer.N.`/`.layers.N.` with N = layer."""
    return {n for n, _ in backbone.named_parameters() if (m := LAYER.search(n)) and int(m.group(1)) == layer}


def depth(backbone) -> int:
    return 1 + max(int(m.group(1)) for n, _ in backbone.named_parameters() if (m := LAYER.search(n)))


# --- the processor's tensors -------------------------------------------------------------------------------

def direct_processing(path: Path, family: str, raw) -> dict[str, torch.Tensor]:
    """The saved processor applied by hand to the raw split (what xmbench's split must hold)."""
    import transformers

    modality = MODALITY[family]
    if modality == "text":
        tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        flat = [c for item in raw.captions for c in item]
        out = tokenizer(flat, padding=True, truncation=True, max_length=DataConfig.max_text_tokens, return_tensors="pt")
        return {k: out[k] for k in ("input_ids", "attention_mask")}
    if modality == "image":
        processor = transformers.AutoImageProcessor.from_pretrained(path, local_files_only=True)
        return {"pixel_values": processor(images=list(raw.images), return_tensors="pt")["pixel_values"]}
    extractor = transformers.AutoFeatureExtractor.from_pretrained(path, local_files_only=True)
    mask = {"return_attention_mask": True} if family == "whisper" else {}
    return dict(extractor(list(raw.audio), sampling_rate=SAMPLE_RATE, return_tensors="pt", **mask))


# family → {input: shape of one row}; text rows are padded to the longest caption
ROW_SHAPES = {"clip_vision": {"pixel_values": (3, 32, 32)}, "vit": {"pixel_values": (3, 32, 32)},
              "dinov2": {"pixel_values": (3, 32, 32)},
              "ast": {"input_values": (160, 16)},  # 160 frames × 16 mel bins, the extractor's
              "wav2vec2": {"input_values": (8000,), "attention_mask": (8000,)},  # 0.5 s of raw waveform at 16 kHz
              "whisper": {"input_features": (16, 200), "attention_mask": (200,)},  # its 2 s chunk, a mask per frame
              "clap_audio": {"input_features": (1, 61, 16), "is_longer": (1,)}}


@pytest.mark.parametrize("family", FAMILIES)
def test_the_tower_reads_its_own_processors_tensors(checkpoint, family):
    path, modality = checkpoint(family), MODALITY[family]
    config = family_config(path, family)
    assert config.data.processors == {modality: str(path)}
    split, raw = load_split(config.data, "test"), load_raw(config.data, "test")
    stored = getattr(split, modality)
    expected = direct_processing(path, family, raw)
    assert sorted(stored) == sorted(expected)
    for key, value in expected.items():
        assert torch.equal(stored[key], torch.as_tensor(value)), key
    n = len(split)
    if modality == "text":
        ids, mask = stored["input_ids"], stored["attention_mask"]
        assert ids.shape == mask.shape and ids.shape[1] <= DataConfig.max_text_tokens
        assert (ids[:, 0] == BOS).all() and (ids[torch.arange(len(ids)), mask.sum(1) - 1] == EOS).all()
    else:
        assert {k: tuple(v.shape) for k, v in stored.items()} == {k: (n, *s) for k, s in ROW_SHAPES[family].items()}
    if modality == "image":  # decoded at the processor's resolution, whatever data.image_size says
        from dataclasses import replace

        from xmbench.data.processors import decoding_config

        assert decoding_config(replace(config.data, image_size=48)).image_size == 32 and raw.images.shape[1:3] == (32, 32)
    if family == "wav2vec2":  # the raw waveform at 16 kHz, normalised per clip (zero mean, unit variance)
        assert raw.audio.shape == (n, int(0.5 * SAMPLE_RATE))
        wave = torch.as_tensor(raw.audio)
        torch.testing.assert_close(stored["input_values"], (wave - wave.mean(1, keepdim=True))
                                   / torch.sqrt(wave.var(1, unbiased=False, keepdim=True) + 1e-7), rtol=0, atol=1e-4)
    if family == "whisper":  # 0.5 s of the 2 s chunk are real: 50 of 200 frames (10 ms hop)
        assert (stored["attention_mask"].sum(1) == 50).all() and (stored["attention_mask"][:, :50] == 1).all()
    if family == "clap_audio":  # 0.5 s clips are shorter than its 3 s window: repeated, never "longer"
        assert not stored["is_longer"].any()
    model = build(config, (modality,)).eval()
    with torch.no_grad():
        embeddings = model.encode(modality, split.rows(modality, torch.arange(3)))
    assert embeddings.shape == (3, config.model.embed_dim) and torch.isfinite(embeddings).all()


# --- adapters by role ---------------------------------------------------------------------------------------

def adapted(backbone, kind: str) -> list[str]:
    """Names (inside the peft-wrapped backbone, without its prefix) of the modules holding a `kind` submodule."""
    names = [n for n, _ in backbone.named_modules() if n.endswith(f".{kind}")]
    return sorted(n.removeprefix("base_model.model.").rsplit(f".{kind}", 1)[0] for n in names)


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_by_role_adapts_exactly_those_modules_of_the_top_layer(checkpoint, family):
    roles = ["query", "value", "mlp_in"]
    config = family_config(checkpoint(family), family, adapter={"method": "lora", "targets": roles, "layers": "top:1"})
    modality = MODALITY[family]
    backbone = build(config, (modality,)).towers[modality].backbone
    prefix, paths = TOP[family]
    assert adapted(backbone, "lora_A") == sorted(prefix + paths[r] for r in roles)  # roles × 1 layer
    assert adapted(backbone, "lora_B") == adapted(backbone, "lora_A")
    trainable = [n for n, p in backbone.named_parameters() if p.requires_grad]
    assert len(trainable) == 2 * len(roles) and all(".lora_" in n and prefix in n for n in trainable)

    everywhere = family_config(checkpoint(family), family)  # the default LoRA: query and value of every layer
    backbone = build(everywhere, (modality,)).towers[modality].backbone
    bottom = prefix.replace(".1.", ".0.")
    assert adapted(backbone, "lora_A") == sorted(p + paths[r] for p in (bottom, prefix) for r in ("query", "value"))


@pytest.mark.parametrize("family", FAMILIES)
def test_dora_adds_one_magnitude_vector_per_adapted_module(checkpoint, family):
    roles = ["key", "output", "mlp_out"]
    adapter = {"method": "lora", "targets": roles, "layers": "top:1", "use_dora": True, "rank": 2}
    config = family_config(checkpoint(family), family, adapter=adapter)
    modality = MODALITY[family]
    backbone = build(config, (modality,)).towers[modality].backbone
    prefix, paths = TOP[family]
    expected = sorted(prefix + paths[r] for r in roles)
    assert adapted(backbone, "lora_A") == expected and adapted(backbone, "lora_magnitude_vector") == expected
    magnitudes = {n: p for n, p in backbone.named_parameters() if "lora_magnitude_vector" in n}
    assert len(magnitudes) == len(roles) and all(p.requires_grad for p in magnitudes.values())
    for name, magnitude in magnitudes.items():  # one entry per output row of the adapted weight, its row norm at start
        module = backbone.get_submodule(name.removeprefix("base_model.model.").split(".lora_magnitude_vector")[0])
        torch.testing.assert_close(magnitude.detach(), module.base_layer.weight.norm(dim=1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
def test_bottleneck_adapters_follow_the_top_layers_attention_and_ffn_outputs(checkpoint, family):
    from xmbench.models.adapters._layers import SerialAdapter

    config = family_config(checkpoint(family), family, adapter={"method": "bottleneck", "layers": "top:1", "reduction": 4})
    modality = MODALITY[family]
    backbone = build(config, (modality,)).towers[modality].backbone
    prefix, paths = TOP[family]
    wrapped = sorted(n for n, m in backbone.named_modules() if isinstance(m, SerialAdapter))
    assert wrapped == sorted(prefix + paths[r] for r in ("output", "mlp_out"))
    trainable = sorted(n for n, p in backbone.named_parameters() if p.requires_grad)
    assert trainable == sorted(f"{w}.adapter.{part}.{kind}" for w in wrapped for part in ("down", "up")
                               for kind in ("weight", "bias"))


# --- what trains: unfreeze_top and layer decay --------------------------------------------------------------

class Watch(Callback):
    """Listed last: after the first step, which parameters trained and the optimizer's groups."""

    def __init__(self):
        self.trainable, self.groups = None, None

    def on_step_end(self, state, log):
        if self.trainable is None:
            names = {id(p): n for n, p in state.model.named_parameters()}
            self.trainable = {n for n, p in state.model.named_parameters() if p.requires_grad}
            self.groups = {g["component"]: (g["lr_scale"], {names[id(p)] for p in g["params"]})
                           for g in state.optimizer.param_groups}


@pytest.mark.parametrize("family", FAMILIES)
def test_unfreeze_top_trains_exactly_the_top_layer_at_its_layer_decay_rate(checkpoint, family):
    from xmbench.registry import CALLBACKS
    from xmbench.train.engine import train

    modality = MODALITY[family]
    callback = {"name": "unfreeze_top", "layers": 1, "towers": [modality], "final_norm": False}
    config = family_config(checkpoint(family), family,
                           {"train": {"steps": 1, "eval_every": 0, "callbacks": [callback], "layer_decay": 0.5}},
                           adapter={"method": "frozen"})
    model = build(config)
    backbone = model.towers[modality].backbone
    assert depth(backbone) == 2
    top = layer_parameters(backbone, 1)
    assert top and all(n.startswith(TOP[family][0]) for n in top)
    watch = Watch()
    split = load_split(config.data, "train")
    train(model, split, config.train, seed=0, pairs=config.train.modality_pairs(list(MODALITIES)), progress=False,
          callbacks=[CALLBACKS.bind(c)() for c in config.train.callbacks] + [watch])
    prefix = f"towers.{modality}.backbone."
    assert {n.removeprefix(prefix) for n in watch.trainable if n.startswith(prefix)} == top
    tower_groups = {c: g for c, g in watch.groups.items() if c.startswith(f"tower/{modality}")}
    assert list(tower_groups) == [f"tower/{modality}@1"]  # the top layer of 2: decay^0
    scale, names = tower_groups[f"tower/{modality}@1"]
    assert scale == 1.0 and {n.removeprefix(prefix) for n in names} == top


@pytest.mark.parametrize("family", FAMILIES)
def test_final_norm_unfreezes_what_is_above_the_last_layer_never_the_input_side(checkpoint, family):
    from xmbench.train.callbacks._unfreeze import top_layers, tower_layers

    modality = MODALITY[family]
    model = build(family_config(checkpoint(family), family, adapter={"method": "frozen"}), (modality,))
    assert tower_layers(model, [modality]) == {modality: 2}
    chosen = top_layers(model, {modality: 2}, 1, final_norm=True)
    prefix = f"towers.{modality}.backbone."
    picked = {n.removeprefix(prefix) for n, _ in model.named_parameters() if chosen(n)}
    backbone = model.towers[modality].backbone
    assert picked == layer_parameters(backbone, 1) | set(ABOVE[family])
    assert set(ABOVE[family]) <= set(backbone_names(backbone))


@pytest.mark.parametrize("family", FAMILIES)
def test_layer_decay_gives_the_top_layer_rate_one_and_each_lower_one_another_factor(checkpoint, family):
    from xmbench.train.optim import ParameterGroups

    modality = MODALITY[family]
    config = family_config(checkpoint(family), family, {"train.layer_decay": 0.5}, adapter={"method": "full"})
    model = build(config, (modality,))
    optimizer = ParameterGroups(model, {}, config.train.layer_decay).build(config.train)
    names = {id(p): n.removeprefix(f"towers.{modality}.backbone.") for n, p in model.named_parameters()}
    groups = {g["component"]: (g["lr_scale"], {names[id(p)] for p in g["params"]}) for g in optimizer.param_groups
              if g["component"].startswith("tower/")}
    backbone = model.towers[modality].backbone
    trainable = {n for n, p in backbone.named_parameters() if p.requires_grad}
    top, below = layer_parameters(backbone, 1) & trainable, layer_parameters(backbone, 0) & trainable
    assert groups[f"tower/{modality}@1"] == (1.0, top)
    assert groups[f"tower/{modality}@0"] == (0.5, below)
    assert groups[f"tower/{modality}@-1"] == (0.25, trainable - top - below)  # outside the layers: decay^L
    assert set(groups) == {f"tower/{modality}@{i}" for i in (-1, 0, 1)}


# --- a short run: train, merge, quantise, evaluate ----------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_trained_merged_and_quantised_it_evaluates_to_finite_metrics(checkpoint, family):
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    from xmbench.bench import stages
    from xmbench.registry import TRANSFORMS, load_builtins

    load_builtins()
    modality = MODALITY[family]
    adapter = {"method": "lora", "targets": ["query", "value", "mlp_in"], "layers": "top:1"}
    config = family_config(checkpoint(family), family, {"train.eval_every": 0}, adapter=adapter)
    data = stages.load_data(config)
    torch.manual_seed(0)
    model, foundation = stages.prepare_model(config, data, seed=0, progress=False)
    assert foundation["pretrained"] == [f"tower/{modality} (checkpoint {checkpoint(family)})"]  # no foundation stage
    result = stages.train_model(model, config, data, seed=0, checkpoint_dir=None, identity="hf", progress=False,
                                probes={})
    assert len(result.steps) == TINY_BASE["train"]["steps"] and all(math.isfinite(s.loss) for s in result.steps)
    lora_b = [p for n, p in model.named_parameters() if n.startswith(f"towers.{modality}.") and "lora_B" in n]
    assert len(lora_b) == 3 and all(torch.count_nonzero(p) for p in lora_b)  # the adapters trained

    rows = data.test.rows(modality, torch.arange(8))
    model.eval()
    with torch.no_grad():
        before = model.encode(modality, rows)
    model = TRANSFORMS.bind(TRANSFORMS.default("merge"))(model)
    assert not any("lora_" in n for n, _ in model.named_parameters())
    with torch.no_grad():
        merged = model.encode(modality, rows)
    assert torch.nn.functional.cosine_similarity(merged, before).min() >= 0.9999
    model = TRANSFORMS.bind(TRANSFORMS.default("quantize", method="dynamic_int8", components=["tower/*"]))(model)
    tower = model.towers[modality]
    assert model.quantized == dict.fromkeys(("tower/text", "tower/image", "tower/audio"), "dynamic_int8")
    assert any(type(m) is DynamicLinear for m in tower.modules())
    assert not any(type(m) is torch.nn.Linear for m in tower.modules())
    evaluation = stages.evaluate(model, config, data.test)
    directions = [d for d, m in evaluation.metrics.items() if isinstance(m, dict)]
    assert sorted(directions) == sorted(config.eval.directions)
    values = [v for d in directions for v in evaluation.metrics[d].values() if isinstance(v, float)]
    assert values and all(math.isfinite(v) for v in values)


# --- pooled vectors, computed by hand -----------------------------------------------------------------------

def tower_of(path: Path, modality: str, pooling: str = "auto"):
    torch.manual_seed(0)
    return hf(TowerConfig(arch="hf", path=str(path), pooling=pooling), DataConfig(), modality).eval()


def audio_inputs(path: Path, seconds: list[float], **padding) -> dict[str, torch.Tensor]:
    """Random clips of these lengths through the folder's extractor, with the attention mask of their padding."""
    import transformers

    generator = torch.Generator().manual_seed(0)
    clips = [0.1 * torch.randn(int(s * SAMPLE_RATE), generator=generator).numpy() for s in seconds]
    extractor = transformers.AutoFeatureExtractor.from_pretrained(path, local_files_only=True)
    out = extractor(clips, sampling_rate=SAMPLE_RATE, return_attention_mask=True, return_tensors="pt", **padding)
    return {k: torch.as_tensor(v) for k, v in out.items()}


def test_wav2vec2_mean_pools_exactly_the_frames_of_the_real_samples(checkpoint):
    path = checkpoint("wav2vec2")
    tower = tower_of(path, "audio")
    assert tower.pooling == "mean"
    inputs = audio_inputs(path, [0.5, 0.3], padding=True)
    assert inputs["attention_mask"].sum(1).tolist() == [8000, 4800]
    with torch.no_grad():
        pooled = tower.compute(inputs)
        states = tower.backbone(**inputs).last_hidden_state
    frames = []
    for samples in (8000, 4800):  # brute force: each convolution of the feature encoder, no padding
        for kernel, stride in zip(tower.backbone.config.conv_kernel, tower.backbone.config.conv_stride):
            samples = (samples - kernel) // stride + 1
        frames.append(samples)
    assert frames[0] == states.shape[1] and frames[1] < frames[0]
    expected = torch.stack([states[i, :f].mean(0) for i, f in enumerate(frames)])
    torch.testing.assert_close(pooled, expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(pooled[1], states[1].mean(0))  # the padded frames are left out


def test_whisper_mean_pools_the_states_of_the_real_mel_frames(checkpoint):
    path = checkpoint("whisper")
    tower = tower_of(path, "audio")
    inputs = audio_inputs(path, [0.5, 0.25])
    assert inputs["input_features"].shape == (2, 16, 200) and inputs["attention_mask"].sum(1).tolist() == [50, 25]
    with torch.no_grad():
        pooled = tower.compute(inputs)
        states = tower.backbone(**inputs).last_hidden_state
    assert states.shape[1] == 100  # conv2 halves the 200 frames
    real = [(50 - 1) // 2 + 1, (25 - 1) // 2 + 1]  # conv2: kernel 3, stride 2, padding 1
    expected = torch.stack([states[i, :n].mean(0) for i, n in enumerate(real)])
    torch.testing.assert_close(pooled, expected, rtol=1e-5, atol=1e-6)


def text_inputs(path: Path) -> dict[str, torch.Tensor]:
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    out = tokenizer(["a red circle", "a small blue square above a green triangle"], padding=True, return_tensors="pt")
    return {"input_ids": out["input_ids"], "attention_mask": out["attention_mask"]}


def test_text_pooling_last_cls_and_mean_by_hand(checkpoint):
    path = checkpoint("bert")
    inputs = text_inputs(path)
    mask = inputs["attention_mask"]
    assert mask[0].sum() < mask[1].sum()  # the first row is padded
    with torch.no_grad():
        states = tower_of(path, "text", "cls").backbone(**inputs).last_hidden_state
        pooled = {kind: tower_of(path, "text", kind).compute(inputs) for kind in ("last", "cls", "mean", "auto")}
    lengths = mask.sum(1)
    assert (inputs["input_ids"][torch.arange(2), lengths - 1] == EOS).all()
    torch.testing.assert_close(pooled["last"], states[torch.arange(2), lengths - 1], rtol=0, atol=0)
    torch.testing.assert_close(pooled["cls"], states[:, 0], rtol=0, atol=0)
    expected_mean = torch.stack([states[i, :n].mean(0) for i, n in enumerate(lengths.tolist())])
    torch.testing.assert_close(pooled["mean"], expected_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(pooled["auto"], pooled["mean"], rtol=0, atol=0)  # BERT's default: mean


@pytest.mark.parametrize(("family", "kind"), [("vit", "cls"), ("dinov2", "cls"), ("clip_vision", "pooler"),
                                              ("clip_text", "pooler"), ("ast", "pooler"), ("clap_text", "pooler")])
def test_the_familys_default_pooling(checkpoint, family, kind):
    path, modality = checkpoint(family), MODALITY[family]
    tower = tower_of(path, modality)
    assert tower.pooling == kind
    if modality == "text":
        inputs = text_inputs(path)
    else:
        split = load_split(family_config(path, family).data, "test")
        inputs = split.rows(modality, torch.arange(2))
    with torch.no_grad():
        output = tower.backbone(**inputs)
        pooled = tower.compute(inputs)
    expected = output.last_hidden_state[:, 0] if kind == "cls" else output.pooler_output
    torch.testing.assert_close(pooled, expected, rtol=0, atol=0)
    if family == "clip_text":  # CLIP's pooler is the EOS token's state (the last real token here)
        last = inputs["attention_mask"].sum(1) - 1
        torch.testing.assert_close(pooled, output.last_hidden_state[torch.arange(2), last], rtol=0, atol=0)
    if family == "ast":  # AST's: the mean of its CLS and distillation tokens
        torch.testing.assert_close(pooled, output.last_hidden_state[:, :2].mean(1), rtol=1e-6, atol=1e-6)


# --- refusals at `xmbench validate` -------------------------------------------------------------------------

SUITE = """[suite]
name = "{name}"

[base]
"data.n_train" = 48
"data.n_val" = 16
"data.n_test" = 24
"data.image_size" = 32
"data.audio_seconds" = 0.5
"data.n_mels" = 32
"model.embed_dim" = 16
"model.text.size" = "tiny"
"model.image.size" = "tiny"
"model.audio.size" = "tiny"
"foundation.enabled" = false
"train.steps" = 2
"train.batch_size" = 8
{tower}
"""


def gpt2_checkpoint(folder: Path) -> Path:
    """A tiny GPT-2: a layer list (h.N) whose linears (transformers' Conv1D) have names no role knows."""
    import transformers

    tokenizer = tiny_checkpoints.tokenizer()
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                                     bos_token_id=BOS, eos_token_id=EOS, pad_token_id=tiny_checkpoints.PAD)
    transformers.GPT2Model(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def validated(tmp_path_factory, checkpoint):
    """`xmbench validate` (a subprocess, as a user runs it) over two suites: GPT-2 text towers with the default
    targets (refused) and with the targets its message names (fine), and a wav2vec2 tower whose extractor samples
    at 8 kHz."""
    import transformers

    root = tmp_path_factory.mktemp("validate")
    gpt2 = gpt2_checkpoint(root / "gpt2")
    slow = tiny_checkpoints.save("wav2vec2", root / "wav2vec2-8k")
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=8000, return_attention_mask=True).save_pretrained(slow)
    roles = root / "gpt2.toml"
    roles.write_text(SUITE.format(name="gpt2", tower=f'"model.text" = {{ arch = "hf", path = "{gpt2}" }}') + """
[variants.roles]

[variants.named]
"model.text.adapter" = { method = "lora", targets = ["attn.c_attn", "attn.c_proj"] }
""")
    rate = root / "w8k.toml"
    rate.write_text(SUITE.format(name="w8k", tower=f'"model.audio" = {{ arch = "hf", path = "{slow}" }}')
                    + "\n[variants.plain]\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "xmbench.cli", "validate", str(roles), str(rate)], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=600)
    problems = [line for line in result.stderr.splitlines() if line.startswith("xmbench: error: ")]
    return result, problems, roles, rate


def test_validate_refuses_roles_that_resolve_to_nothing_naming_layers_and_linears(validated):
    result, problems, roles, _ = validated
    assert result.returncode == 2 and "Traceback" not in result.stderr
    mine = [p for p in problems if str(roles) in p]
    assert len(mine) == 1, result.stderr  # the variant with targets named explicitly validates
    (problem,) = mine
    assert "variant 'roles'" in problem and "the role 'query' resolves to no module of GPT2Model" in problem
    assert "its layers are h.N" in problem
    assert "the linear modules of h.0 are: attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj" in problem
    assert 'Name the targets explicitly by module name, e.g. targets = ["attn.c_attn", "attn.c_proj"]' in problem


def test_validate_refuses_a_processor_whose_sampling_rate_the_data_cannot_meet(validated):
    result, problems, _, rate = validated
    mine = [p for p in problems if str(rate) in p]
    assert len(mine) == 1, result.stderr
    (problem,) = mine
    assert "variant 'plain': data.processors.audio:" in problem and "samples at 8000 Hz" in problem
    assert "Nyquist frequency 4000 Hz" in problem and "model.audio" in problem
    assert f"{len(problems)} problems found" in result.stderr
