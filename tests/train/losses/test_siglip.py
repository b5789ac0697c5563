"""SigLIP: a sigmoid loss on every pair of rows, with a learnable bias the optimizer trains."""
import math

import pytest
import torch
import torch.nn.functional as F

from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.models.reference import build_reference
from xmbench.registry import LOSSES
from xmbench.train.engine import train
from xmbench.train.hooks import Callback
from xmbench.train.step import LossInput


def loss(embeddings, ids, scale, parameters, pairs=(("text", "image"),), local_rows=None, **options):
    scales = {f"{a}-{b}": torch.tensor(scale) for a, b in pairs}
    inputs = LossInput(embeddings, ids, scales, list(pairs), local_rows=local_rows, parameters=parameters)
    return LOSSES.bind(LOSSES.default("siglip", **options))(inputs)


def by_hand(a, b, a_ids, b_ids, scale, bias):
    """ℓ_ij = log(1 + e^{−y_ij z_ij}), z_ij = s·⟨a_i, b_j⟩ + bias, as nested lists."""
    return [[math.log1p(math.exp(-(1 if x == y else -1) * (scale * float(ai @ bj) + bias))) for bj, y in zip(b, b_ids)]
            for ai, x in zip(a, a_ids)]


def test_batch_and_mean_reductions_by_hand():
    torch.manual_seed(0)
    a, b = F.normalize(torch.randn(4, 3), dim=-1), F.normalize(torch.randn(4, 3), dim=-1)
    a_ids, b_ids = [0, 1, 2, 2], [0, 1, 2, 3]  # rows 2 and 3 of a are one item: both positives of b's row 2
    ids = {"text": torch.tensor(a_ids), "image": torch.tensor(b_ids)}
    terms = by_hand(a, b, a_ids, b_ids, 5.0, -2.0)
    total = sum(map(sum, terms))
    bias = {"bias": torch.tensor(-2.0)}
    batch = loss({"text": a, "image": b}, ids, 5.0, bias)
    mean = loss({"text": a, "image": b}, ids, 5.0, bias, reduction="mean")
    assert batch.parts["text-image"].item() == pytest.approx(total / 4, rel=1e-5)  # the paper's Σ over B² pairs / B
    assert mean.parts["text-image"].item() == pytest.approx(total / 16, rel=1e-5)
    rows, columns = [sum(r) for r in terms], [sum(c) for c in zip(*terms)]
    assert batch.per_item.tolist() == pytest.approx([(r + c) / 2 for r, c in zip(rows, columns)], rel=1e-5)
    assert mean.per_item.tolist() == pytest.approx([(r + c) / 8 for r, c in zip(rows, columns)], rel=1e-5)


def test_the_bias_is_declared_learnable_and_gets_a_gradient():
    entry = LOSSES.entry("siglip")
    assert entry.parameters(entry.options()) == {"bias": -10.0}  # the paper's initialisation
    assert entry.parameters(entry.options(per_pair_bias=True, init_bias=-5.0)) == {
        "bias/text-image": -5.0, "bias/text-audio": -5.0, "bias/image-audio": -5.0}
    e = {m: F.normalize(torch.randn(3, 4), dim=-1) for m in ("text", "image", "audio")}
    ids = dict.fromkeys(e, torch.arange(3))
    pairs = [("text", "image"), ("image", "audio")]
    biases = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in
              entry.parameters(entry.options(per_pair_bias=True)).items()}
    out = loss(e, ids, 10.0, biases, pairs=pairs, per_pair_bias=True)
    sum(out.parts.values()).backward()
    assert biases["bias/text-image"].grad is not None and biases["bias/image-audio"].grad is not None
    assert biases["bias/text-audio"].grad is None  # that pair did not train
    # d/dβ Σ_ij log(1 + e^{−y z}) / B = Σ_ij (σ(z) − [y = 1]) / B: negative at −10, the bias rises
    assert biases["bias/text-image"].grad.item() < 0


def test_local_rows_cover_every_pair_once_over_the_ranks():
    torch.manual_seed(1)
    e = {m: F.normalize(torch.randn(4, 3), dim=-1) for m in ("text", "image")}
    ids = dict.fromkeys(e, torch.arange(4))
    bias = {"bias": torch.tensor(-1.0)}
    whole = loss(e, ids, 3.0, bias).parts["text-image"]
    halves = [loss(e, ids, 3.0, bias, local_rows=slice(0, 2)), loss(e, ids, 3.0, bias, local_rows=slice(2, 4))]
    assert all(h.per_item is None for h in halves)
    assert ((halves[0].parts["text-image"] + halves[1].parts["text-image"]) / 2).item() == pytest.approx(
        whole.item(), rel=1e-6)


def test_training_moves_the_bias(tiny_base):
    config = resolve(tiny_base, {"train": {"steps": 2, "eval_every": 0, "loss": {"name": "siglip", "init_bias": -4.0}}})
    split = load_split(config.data, "train")
    torch.manual_seed(0)
    seen = {}

    class Spy(Callback):
        def on_train_start(self, state):
            seen["groups"] = [g["component"] for g in state.optimizer.param_groups]

        def on_train_end(self, state):
            seen["bias"] = state.step_fn.loss_parameters["bias"].item()

    result = train(build_reference(config, split.modalities), split, config.train, seed=0,
                   pairs=config.train.modality_pairs(split.modalities), progress=False, callbacks=[Spy()])
    assert len(result.steps) == 2 and all(math.isfinite(s.loss) for s in result.steps)
    assert "loss" in seen["groups"] and seen["bias"] != -4.0
