"""Autocast: the chosen components compute in low precision inside encode, the others in fp32."""
import torch

from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.models.reference import build_reference
from xmbench.registry import PRECISIONS
from xmbench.train.engine import train


def test_towers_in_bf16_heads_in_fp32(tiny_base):
    config = resolve(tiny_base, {"train.precision": {"name": "autocast", "dtype": "bf16"}})
    split = load_split(config.data, "test")
    model = build_reference(config, split.modalities).eval()
    dtypes = {}
    linear = next(m for m in model.towers["image"].modules() if isinstance(m, torch.nn.Linear))
    linear.register_forward_hook(lambda m, i, out: dtypes.update(tower=out.dtype))  # a matmul inside the tower
    model.heads["image"].register_forward_hook(lambda m, i, out: dtypes.update(head=out.dtype))
    with torch.no_grad():
        embeddings = model.encode("image", split.rows("image", torch.arange(4)))
    assert dtypes == {"tower": torch.bfloat16, "head": torch.float32} and embeddings.dtype == torch.float32


def test_fp16_brings_a_gradient_scaler_and_trains(tiny_base):
    policy = PRECISIONS.bind(PRECISIONS.default("autocast", dtype="fp16"))()
    assert isinstance(policy.grad_scaler("cpu"), torch.amp.GradScaler)
    assert PRECISIONS.bind(PRECISIONS.default("autocast"))().grad_scaler("cpu") is None  # bf16 needs none
    config = resolve(tiny_base, {"train.precision": {"name": "autocast", "dtype": "fp16", "components": ["head/*"]}})
    split = load_split(config.data, "train")
    torch.manual_seed(0)
    result = train(build_reference(config, split.modalities), split, config.train, seed=0,
                   pairs=config.train.modality_pairs(), progress=False)
    assert len(result.steps) == config.train.steps and all(s.loss == s.loss for s in result.steps)
