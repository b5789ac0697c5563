"""Pretrained dual encoders (model.pretrained): their towers, own heads and logit scale as the starting point."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from xmbench.config import resolve
from xmbench.errors import ConfigError
from xmbench.examples import tiny_checkpoints


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("dual")
    return {kind: str(tiny_checkpoints.save(kind, root / kind)) for kind in ("clip", "clap")}


def _config(tiny_base, path: str, kind: str, **model):
    tiny_base["model"].pop("embed_dim")
    tiny_base["model"]["pretrained"] = {"path": path, "kind": kind}
    tiny_base["model"].update(model)
    return resolve(tiny_base)


@pytest.mark.parametrize("kind, other, features", [("clip", "image", "get_image_features"),
                                                    ("clap", "audio", "get_audio_features")])
def test_the_checkpoints_towers_heads_and_scale_are_the_starting_point(checkpoints, tiny_base, kind, other, features):
    import transformers

    from xmbench.bench.stages import load_data
    from xmbench.models.model import build_model

    config = _config(tiny_base, checkpoints[kind], kind)
    assert config.model.embed_dim == 16  # the checkpoint's projection_dim
    assert config.model.text.arch == getattr(config.model, other).arch == "hf"
    data = load_data(config)
    model, facts = build_model(config, data.modalities, seed=0, progress=False)
    model.eval()
    whole = getattr(transformers, "CLIPModel" if kind == "clip" else "ClapModel").from_pretrained(checkpoints[kind]).eval()
    for modality, method in (("text", "get_text_features"), (other, features)):
        inputs = data.test.rows(modality, torch.arange(4))
        with torch.no_grad():
            expected = getattr(whole, method)(**inputs)
            expected = F.normalize(getattr(expected, "pooler_output", expected), dim=-1)
            assert torch.allclose(model.encode(modality, inputs), expected, atol=1e-6)
    scale = whole.logit_scale if kind == "clip" else whole.logit_scale_t
    assert model.logit_scales([("text", other)])[f"text-{other}"].item() == pytest.approx(math.exp(scale.item()), rel=1e-5)
    third = ({"text", "image", "audio"} - {"text", other}).pop()
    assert facts["fresh"] == [f"tower/{third}", f"head/{third}"]
    assert f"head/{other} ({kind} {checkpoints[kind]})" in facts["pretrained"]


def test_a_head_the_suite_sets_starts_fresh(checkpoints, tiny_base):
    from xmbench.models.dual_encoder import keeps_checkpoint_head

    config = _config(tiny_base, checkpoints["clip"], "clip", head="mlp")
    assert not keeps_checkpoint_head(config.model, "text")


def test_conflicts_and_wrong_folders_are_refused(checkpoints, tiny_base, tmp_path):
    import copy

    with pytest.raises(ConfigError, match=r"model.embed_dim: 32, but the clip checkpoint's shared space is 16 wide"):
        base = copy.deepcopy(tiny_base)
        base["model"]["embed_dim"] = 32
        base["model"]["pretrained"] = {"path": checkpoints["clip"], "kind": "clip"}
        resolve(base)
    with pytest.raises(ConfigError, match=r"model.image: model.pretrained \(clip\) gives the image tower"):
        _config(copy.deepcopy(tiny_base), checkpoints["clip"], "clip", image={"arch": "hf", "path": str(tmp_path)})
    with pytest.raises(ConfigError, match=r"model.pretrained.path: .*config.json has no projection_dim"):
        _config(copy.deepcopy(tiny_base), str(tmp_path), "clip")
