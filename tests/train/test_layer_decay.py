"""Layer-wise lr decay (train.layer_decay): one group per tower layer, multiplier decay^(L−1−l), applied by the schedule."""
import dataclasses

import pytest
import torch

from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.models.reference import build_reference
from xmbench.registry import SCHEDULES
from xmbench.train.engine import train
from xmbench.train.hooks import Callback
from xmbench.train.optim import LAYER, ParameterGroups

PAIRS = [("text", "image"), ("text", "audio"), ("image", "audio")]
OVERRIDES = {
    "train.layer_decay": 0.5, "train.lr_scale": {"tower/text": 0.1},
    "model.text.adapter.method": "full",  # every text parameter trains: embeddings and both layers
    "model.image.adapter": {"method": "lora", "layers": "top:1"},  # adapters in the top layer only
    "model.audio.adapter.method": "frozen",
}


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.fixture
def setup(tiny_base):
    config = resolve(tiny_base, OVERRIDES)
    torch.manual_seed(0)
    return config, build_reference(config, ("text", "image", "audio"))


def test_one_group_per_layer_with_decay_to_the_power_of_the_distance_from_the_top(setup):
    config, model = setup
    optimizer = ParameterGroups(model, config.train.lr_scale, config.train.layer_decay).build(config.train)
    scales = {g["component"]: g["lr_scale"] for g in optimizer.param_groups}
    assert scales == pytest.approx({
        "temperature": 1.0,
        # L = 2 layers: layer 1 × 0.5⁰, layer 0 × 0.5¹, the embeddings below × 0.5², all × the tower's 0.1
        "tower/text@-1": 0.1 * 0.25, "tower/text@0": 0.1 * 0.5, "tower/text@1": 0.1,
        # the depth counts frozen layers too: the image tower's adapted top layer is layer 1 of 2
        "tower/image@1": 1.0,
        "head/text": 1.0, "head/image": 1.0, "head/audio": 1.0,  # heads are not split (no layers)
    })
    names = {id(p): n for n, p in model.named_parameters()}
    for group in optimizer.param_groups:
        if group["component"].startswith("tower/"):
            layer = int(group["component"].split("@")[1])
            for p in group["params"]:
                match = LAYER.search(names[id(p)])
                assert (int(match.group(1)) if match else -1) == layer, names[id(p)]
    embeddings = [p for n, p in model.named_parameters() if n.startswith("towers.text.") and "embeddings" in n]
    (group,) = [g for g in optimizer.param_groups if g["component"] == "tower/text@-1"]
    assert {id(p) for p in group["params"]} == {id(p) for p in embeddings}


def test_the_schedule_scales_every_layer_group(setup):
    config, model = setup
    train_cfg = dataclasses.replace(config.train, steps=3, eval_every=0)
    seen = []

    class Lrs(Callback):
        def on_step_end(self, state, log):
            seen.append({g["component"]: (g["lr"], g["lr_scale"]) for g in state.optimizer.param_groups})

    train(model, load_split(config.data, "train"), train_cfg, seed=0, pairs=PAIRS, progress=False, callbacks=[Lrs()])
    schedule = SCHEDULES.bind(train_cfg.schedule)
    for step, groups in enumerate(seen):
        base = train_cfg.lr * schedule(step, train_cfg.steps, train_cfg.warmup_steps)
        assert len(groups) == 8
        for component, (lr, scale) in groups.items():
            assert lr == pytest.approx(base * scale), (step, component)
        assert groups["tower/text@0"][0] == pytest.approx(base * 0.05)
        assert groups["tower/text@-1"][0] == pytest.approx(groups["tower/text@1"][0] * 0.25)
