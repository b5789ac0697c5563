"""Selective unfreezing: the top N layers of chosen towers fine-tune fully from a step on, the adapters below keep training."""
import re

import pytest
import torch

from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.errors import ConfigError
from xmbench.models.reference import build_reference
from xmbench.registry import CALLBACKS
from xmbench.train.callbacks._unfreeze import top_layers, tower_layers
from xmbench.train.engine import train
from xmbench.train.hooks import Callback

# -- training the tiny config with an unfreezing callback (test_progressive_unfreeze uses these too) --------------

PAIRS = [("text", "image"), ("text", "audio"), ("image", "audio")]


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


class Watch(Callback):
    """Listed after the unfreezing callback: at each step's start, which parameters train and which the optimizer holds."""

    def __init__(self):
        self.trainable, self.in_optimizer, self.notes = [], [], []

    def on_step_start(self, state):
        names = {id(p): n for n, p in state.model.named_parameters()}
        self.trainable.append({n for n, p in state.model.named_parameters() if p.requires_grad})
        self.in_optimizer.append({names[id(p)] for g in state.optimizer.param_groups for p in g["params"]})

    def on_step_end(self, state, log):
        self.notes.append(dict(log.notes))


def run(tiny_base, callback: dict, steps: int, **overrides):
    """(model, weights before, Watch) after `steps` steps of the tiny config with the callback."""
    config = resolve(tiny_base, {"train": {"callbacks": [callback], "steps": steps, "eval_every": 0}, **overrides})
    torch.manual_seed(0)
    model = build_reference(config, ("text", "image", "audio"))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    watch = Watch()
    callbacks = [CALLBACKS.bind(choice)() for choice in config.train.callbacks] + [watch]
    train(model, load_split(config.data, "train"), config.train, seed=0, pairs=PAIRS, progress=False,
          callbacks=callbacks)
    return model, before, watch


def base_weights(names, tower: str, layer: int | None) -> set[str]:
    """The frozen-by-default (non-adapter) parameters of one layer of a tower (layer None: outside every layer)."""
    chosen = set()
    for name in names:
        if not name.startswith(f"towers.{tower}.") or "lora_" in name:
            continue
        match = re.search(r"\.layers?\.(\d+)\.", name)
        if (match and layer is not None and int(match.group(1)) == layer) or (not match and layer is None):
            chosen.add(name)
    return chosen


def changed(model, before, names) -> set[str]:
    own = dict(model.named_parameters())
    return {n for n in names if not torch.equal(own[n].detach(), before[n])}


# -- tests ----------------------------------------------------------------------------------------------------------


def test_the_top_layer_trains_from_its_step_and_joins_the_optimizer(tiny_base):
    model, before, watch = run(tiny_base, {"name": "unfreeze_top", "layers": 1, "towers": ["text"], "at_step": 2}, 4)
    names = set(before)
    top = base_weights(names, "text", 1)  # peft's base_model.model.… names, LoRA's .base_layer. weights among them
    assert any(".base_layer." in n for n in top) and all(".base_model.model." in n for n in top)
    for step in range(4):
        unfrozen = step >= 2
        assert (top <= watch.trainable[step]) is unfrozen and (top <= watch.in_optimizer[step]) is unfrozen
        if not unfrozen:
            assert not top & watch.trainable[step] and not top & watch.in_optimizer[step]
        assert not base_weights(names, "text", 0) & watch.trainable[step]  # the layer below stays frozen
        assert not base_weights(names, "image", 1) & watch.trainable[step]  # so do the other towers
    assert [n["unfreeze_top/unfrozen"] for n in watch.notes] == [0, 0, len(top), 0]
    # the unfrozen layer's weights moved, the layer below did not; the adapters below kept training
    assert changed(model, before, top) == top
    assert not changed(model, before, base_weights(names, "text", 0) | base_weights(names, "text", None))
    lora_below = {n for n in names if n.startswith("towers.text.") and ".layer.0." in n and "lora_B" in n}
    assert lora_below and changed(model, before, lora_below) == lora_below


def test_which_parameters_each_option_chooses(tiny_base):
    torch.manual_seed(0)
    model = build_reference(resolve(tiny_base), ("text", "image", "audio"))
    names = [n for n, _ in model.named_parameters()]
    depths = tower_layers(model, [])
    assert depths == {"text": 2, "image": 2, "audio": 2}
    chosen = {n for n in names if top_layers(model, depths, 1, final_norm=True)(n)}
    norms = {n for n in names if n.endswith(("model.layernorm.weight", "model.layernorm.bias"))}  # ViT's and AST's top norm
    assert len(norms) == 4 and norms <= chosen
    embeddings = {n for n in names if "embeddings" in n}
    assert not chosen & embeddings and not chosen & base_weights(names, "text", 0)
    assert base_weights(names, "audio", 1) <= chosen
    without_norm = {n for n in names if top_layers(model, depths, 1, final_norm=False)(n)}
    assert without_norm == chosen - norms
    # more layers than the tower has: every layer, never the embeddings
    everything = {n for n in names if top_layers(model, tower_layers(model, ["image"]), 5, final_norm=False)(n)}
    assert everything == {n for n in names if n.startswith("towers.image.") and ".layers." in n}


def test_a_model_without_tower_layers_is_an_error():
    class Plain(torch.nn.Module):
        modalities = ("text",)

        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(2, 2)

    with pytest.raises(ConfigError, match=r"no transformer layers .* in any tower of this model; components: proj"):
        tower_layers(Plain(), [])


def test_a_tower_the_model_lacks_is_an_error(tiny_base):
    torch.manual_seed(0)
    model = build_reference(resolve(tiny_base), ("text", "image"))
    with pytest.raises(ConfigError, match=r"no transformer layers .* in tower/audio"):
        tower_layers(model, ["audio"])


def test_unfrozen_base_weights_survive_the_artifacts(tiny_base, tmp_path):
    from xmbench.eval.retrieval import encode_split
    from xmbench.models.artifacts import load_artifacts, save_artifacts

    model, _, _ = run(tiny_base, {"name": "unfreeze_top", "towers": ["text"]}, 2)
    config = resolve(tiny_base, {"train": {"callbacks": [{"name": "unfreeze_top", "towers": ["text"]}], "steps": 2,
                                           "eval_every": 0}})
    save_artifacts(model, tmp_path, config, ("text", "image", "audio"), 0)
    test = load_split(config.data, "test")
    assert torch.equal(encode_split(load_artifacts(tmp_path), test, "text"), encode_split(model, test, "text"))
