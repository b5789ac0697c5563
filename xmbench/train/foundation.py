"""The foundation checkpoint: towers pretrained on the built-in source domain, cached on disk.

The image and audio towers start random, so before any PEFT variant can adapt them they are
pretrained once (full fine-tuning, contrastive) on the `source` domain; the pretrained text
tower stays frozen. The result is cached as safetensors under a key derived from everything
that shapes it, so variants and later runs reuse it and a changed config retrains.

The foundation is always pretrained with the reference's projection (linear heads into 512-d,
one learnable temperature): it is the model a user already has. A variant that changes the
heads, the embedding size or the temperature adapts on top of the same pretrained towers, its
new parts starting fresh — as replacing a projection on a trained model does.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import replace

import torch
from safetensors.torch import load_file, save_file

from xmbench.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from xmbench.data.cache import cache_root
from xmbench.data.sources import load_split
from xmbench.models.model import resolve_device
from xmbench.models.reference import build_reference
from xmbench.schema import changes
from xmbench.train.engine import train

FOUNDATION_VERSION = 4  # bump when the pretraining recipe changes, so old caches are not reused
FOUNDATION_ADAPTERS = {"text": "frozen", "image": "full", "audio": "full"}


def foundation_data(config: RunConfig):
    """The source-domain training split, shaped like the variant's data (sizes, rates), complete: what
    the variant's own training data lacks (data.missing) is its problem, not the foundation's."""
    return replace(config.data, name="synthetic", domain="source", n_train=config.foundation.n_train, manifest="",
                   missing={})


def pretraining_config(config: RunConfig) -> RunConfig:
    """The variant's config with the reference's projection: what the foundation is pretrained with."""
    default = ModelConfig()
    towers = {m: replace(getattr(config.model, m), adapter=getattr(default, m).adapter, head=None)
              for m in ("text", "image", "audio")}
    model = replace(config.model, head=default.head, embed_dim=default.embed_dim, temperature=default.temperature,
                    fusion=None, pretrained_projection=default.pretrained_projection, **towers)
    return replace(config, model=model)


def foundation_key(config: RunConfig) -> str:
    """Hash of what shapes the pretrained weights: data shape, towers, heads, loss and pairs, recipe.

    Each part is what it sets differently from the defaults, so options added later with a
    default keep the cache; what does not shape the weights (adapters, sizes of other splits,
    the cache folder) is left out.
    """
    model = pretraining_config(config).model
    data = replace(foundation_data(config), n_val=DataConfig.n_val, n_test=DataConfig.n_test)
    recipe = replace(config.foundation, cache_dir="", enabled=True)
    training = {"loss": changes(config.train.loss, TrainConfig().loss, "loss"), "pairs": config.train.pairs}
    shape = {"version": FOUNDATION_VERSION, "data": changes(data, DataConfig()), "model": changes(model, ModelConfig()),
             "train": training, "foundation": changes(recipe, type(recipe)())}
    device = resolve_device(config.train.device).type
    if device != "cpu":  # a GPU's arithmetic differs in the last bits: its foundation is its own
        shape["device"] = device
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


def foundation_state(config: RunConfig, progress: bool = True) -> tuple[dict[str, torch.Tensor], dict]:
    """The pretrained state dict (from cache, or pretrained now) and facts about it."""
    path = cache_root(config.foundation.cache_dir) / "foundation" / foundation_key(config) / "model.safetensors"
    if path.exists():
        return load_file(path), {"cache": "hit", "path": str(path)}
    fc = config.foundation
    print(f"xmbench: foundation cache miss ({path.parent.name}): pretraining the image and audio towers on "
          f"the built-in source domain ({fc.n_train} items, {fc.steps} steps); this happens once per config "
          f"and takes a few minutes on a 2-core CPU", file=sys.stderr, flush=True)
    started = time.perf_counter()
    data = load_split(foundation_data(config), "train")
    torch.manual_seed(0)
    model = build_reference(pretraining_config(config), data.modalities, adapters=FOUNDATION_ADAPTERS)
    model.to(resolve_device(config.train.device))
    recipe = TrainConfig(steps=fc.steps, batch_size=fc.batch_size, lr=fc.lr, warmup_steps=fc.warmup_steps,
                         eval_every=0, loss=config.train.loss)
    pairs = config.train.modality_pairs()
    with model.precomputed("text", data):  # the text tower is frozen here: run it once per caption, not every step
        result = train(model, data.as_row_indices("text"), recipe, seed=0, pairs=pairs, progress=progress,
                       on_step=_EtaPrinter(fc.steps))
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp))
    os.replace(tmp, path)
    seconds = time.perf_counter() - started
    (path.parent / "meta.json").write_text(json.dumps(
        {"seconds": seconds, "final_loss": result.steps[-1].loss if result.steps else None}, indent=2))
    print(f"xmbench: foundation ready in {seconds:.0f} s → {path}", file=sys.stderr, flush=True)
    return state, {"cache": "miss", "path": str(path), "pretrain_s": seconds}


class _EtaPrinter:
    """After a few steps, say how long the pretraining will take at the measured pace."""

    def __init__(self, total: int, after: int = 5):
        self.total, self.after = total, after

    def __call__(self, log) -> None:
        if log.step + 1 == self.after and self.total > self.after:
            print(f"xmbench: foundation pretraining: about {log.seconds * self.total / 60:.1f} min at "
                  f"{log.seconds:.2f} s/step", file=sys.stderr, flush=True)
