"""The gated cross-attention re-ranker: score = x·y + sigmoid(g)·f(x, y) over the bi-encoder, trained, saved and rebuilt."""
import math

import pytest
import torch

from tests.models.fusion._helpers import MODALITIES, perturb
from xmbench.data.sources import load_split
from xmbench.eval.retrieval import encode_split
from xmbench.models import capabilities
from xmbench.models.artifacts import load_artifacts, save_artifacts
from xmbench.models.fusion._layers import FUSION_FILE, CrossAttentionFusion
from xmbench.models.reference import ReferenceModel
from xmbench.train.engine import make_batch, train
from xmbench.train.step import LossInput

FUSION = {"name": "cross_attention", "k": 10, "tokens": 3, "width": 8, "hidden": 16}

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def unit_rows(n, d=16, seed=0):
    return torch.nn.functional.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_it_wraps_the_reference_model_and_delegates(fused, config):
    assert isinstance(fused, CrossAttentionFusion) and isinstance(fused.reference, ReferenceModel)
    assert fused.rerank_k == 10 and capabilities.reranks(fused) and capabilities.can_score(fused)
    assert fused.modalities == MODALITIES and fused.embed_dim == 16
    assert list(fused.components()) == ["tower/text", "tower/image", "tower/audio", "head/text", "head/image",
                                        "head/audio", "fusion"]
    names = [n for n, _ in fused.named_parameters()]
    assert {fused.component_of(n) for n in names} == {*fused.components(), "temperature"}
    assert fused.component_of("fusion.gate") == "fusion"
    assert fused.component_of("reference.towers.text.backbone.base_model.model.encoder.layer.0.x") == "tower/text"
    pairs = config.train.modality_pairs()
    assert fused.logit_scales(pairs) == fused.reference.logit_scales(pairs)
    assert fused.projection_weights().keys() == set(MODALITIES)
    split = load_split(config.data, "test")
    rows = split.rows("image", torch.arange(4))
    assert torch.equal(fused.eval().encode("image", rows), fused.reference.encode("image", rows))


def test_a_fresh_fused_model_scores_as_the_bi_encoder(fused):
    x, y = unit_rows(5), unit_rows(7, seed=1)
    assert fused.gate.item() == 0.5  # sigmoid(0)
    assert torch.equal(fused.score("text", x, "image", y), x @ y.T)  # f's output layer starts at zero


def test_the_score_is_the_dot_product_plus_the_gated_fused_branch(fused):
    perturb(fused)
    x, y = unit_rows(5), unit_rows(7, seed=1)
    with torch.no_grad():
        scores = fused.score("text", x, "image", y)
        f = torch.stack([fused.fused("text", x[i:i + 1], "image", y.unsqueeze(0))[0] for i in range(5)])
        gate = 1 / (1 + math.exp(-fused.fusion.gate.item()))
        assert torch.allclose(scores, x @ y.T + gate * f, atol=1e-6)
        assert (f.abs() > 1e-3).any()
        # symmetric: image→text scores are the transpose of text→image ones (the loss transposes them)
        assert torch.allclose(fused.score("image", y, "text", x), scores.T, atol=1e-6)
        # re-scoring a query's own candidates gives the same scores as scoring the whole gallery
        top = torch.tensor([[6, 0, 3], [1, 1, 2], [5, 4, 0], [2, 3, 6], [0, 6, 1]])
        assert torch.allclose(fused.rerank("text", x, "image", y[top]), scores.gather(1, top), atol=1e-6)
        # scoring in chunks of a few pairs changes nothing
        fused.pair_budget = 7
        assert torch.allclose(fused.score("text", x, "image", y), scores, atol=1e-6)


def test_with_the_gate_closed_the_scores_are_the_bi_encoder_s(fused):
    perturb(fused)
    x, y = unit_rows(6), unit_rows(9, seed=2)
    with torch.no_grad():
        assert not torch.allclose(fused.score("text", x, "audio", y), x @ y.T, atol=1e-4)
        fused.fusion.gate.fill_(-float("inf"))
        assert fused.gate.item() == 0.0
        assert torch.equal(fused.score("text", x, "audio", y), x @ y.T)
        top = torch.tensor([[0, 1]] * 6)
        assert torch.allclose(fused.rerank("text", x, "audio", y[top]), (x @ y.T)[:, :2], atol=1e-7)


def test_training_moves_the_fusion_and_the_loss_uses_its_scores(fused, config):
    split = load_split(config.data, "train")
    before = {n: p.detach().clone() for n, p in fused.named_parameters() if n.startswith("fusion.")}
    groups = []
    from xmbench.train.hooks import Callback

    class Groups(Callback):
        def on_step_end(self, state, log):
            groups.append({g["component"] for g in state.optimizer.param_groups})

    train(fused, split, config.train, seed=0, pairs=config.train.modality_pairs(), progress=False, callbacks=[Groups()])
    assert "fusion" in groups[0]
    moved = {n for n, p in fused.named_parameters() if n in before and not torch.equal(p, before[n])}
    assert {"fusion.gate", "fusion.out.weight", "fusion.expand.text.weight", "fusion.query.weight"} <= moved
    # the training loss's logits are the fused scores, times the logit scale
    batch = make_batch(split, torch.arange(4), MODALITIES, torch.Generator().manual_seed(0))
    with torch.no_grad():
        emb = {m: fused.encode(m, batch.inputs[m]) for m in MODALITIES}
        scales = capabilities.logit_scales(fused, [("text", "image")])
        logits = LossInput(emb, batch.item_ids, scales, [("text", "image")], fused).logits("text", "image")
        expected = scales["text-image"] * fused.score("text", emb["text"], "image", emb["image"])
        assert torch.allclose(logits, expected) and not torch.allclose(logits, scales["text-image"] *
                                                                       emb["text"] @ emb["image"].T, atol=1e-5)


def test_artifacts_round_trip_the_fusion_and_the_reference(fused, config, tmp_path):
    split = load_split(config.data, "train")
    train(fused, split, config.train, seed=0, pairs=config.train.modality_pairs(), progress=False)
    adapter_bytes = save_artifacts(fused, tmp_path, config, MODALITIES, 0)
    assert (tmp_path / FUSION_FILE).exists() and (tmp_path / "adapters" / "text").is_dir()
    fusion_bytes = sum(p.numel() * 4 for p in fused.fusion.parameters())
    assert adapter_bytes > fusion_bytes
    rebuilt = load_artifacts(tmp_path)
    assert isinstance(rebuilt, CrossAttentionFusion)
    own = dict(fused.named_parameters())
    assert all(torch.equal(p, own[n]) for n, p in rebuilt.named_parameters())
    test = load_split(config.data, "test")
    text, image = encode_split(rebuilt, test, "text"), encode_split(rebuilt, test, "image")
    assert torch.equal(text, encode_split(fused, test, "text"))
    with torch.no_grad():
        assert torch.equal(rebuilt.score("text", text, "image", image), fused.score("text", text, "image", image))


def test_two_stage_scores_on_each_device(fused, device):
    from xmbench.eval.rerank import reranked_scores

    perturb(fused).eval()
    x, y = unit_rows(11), unit_rows(30, seed=3)
    expected = reranked_scores(fused, "text", x, "image", y, chunk_size=4)
    moved = capabilities.move(fused, torch.device(device))
    scores = reranked_scores(moved, "text", x.to(device), "image", y.to(device), chunk_size=4)
    assert scores.device.type == device and torch.allclose(scores.cpu(), expected, atol=1e-5)
    top = (x @ y.T).topk(10, dim=1).indices
    rest = (x @ y.T).scatter(1, top, float("-inf")).amax(1)
    assert (expected.gather(1, top).min(1).values > rest).all()  # the re-scored ten above every other row
