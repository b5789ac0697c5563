"""Fusion before projection: the gated re-ranker reads the towers' outputs (the rows' states), not the shared embeddings."""
import math

import pytest
import torch

from tests.models.fusion._helpers import MODALITIES, fused_config, perturb
from xmbench.bench.runner import run_suite
from xmbench.bench.stages import evaluate, query_function
from xmbench.config import DIRECTIONS, resolve
from xmbench.data.sources import load_split
from xmbench.errors import ModelOutputError
from xmbench.eval.rerank import place_above
from xmbench.eval.retrieval import encode_split, encode_split_states, evaluate_model, rank_scores, summarize
from xmbench.models import capabilities
from xmbench.models.artifacts import load_artifacts, save_artifacts
from xmbench.models.fusion._layers import PreProjectionFusion
from xmbench.models.model import build_model
from xmbench.profile.latency import query_path
from xmbench.suite import parse_suite
from xmbench.train.engine import make_batch, train
from xmbench.train.step import LossInput

FUSION = {"name": "pre_projection", "k": 5, "tokens": 3, "width": 8, "hidden": 16}

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.fixture
def test_split(config):
    return load_split(config.data, "test")


def test_the_branch_reads_each_tower_s_output_at_its_own_width(fused, test_split):
    assert isinstance(fused, PreProjectionFusion) and capabilities.has_states(fused)
    widths = {m: fused.reference.towers[m].hidden_size for m in MODALITIES}
    assert {m: layer.in_features for m, layer in fused.fusion.expand.items()} == widths
    rows = test_split.rows("audio", torch.arange(4))
    with torch.no_grad():
        embeddings, states = fused.encode_states("audio", rows)
        assert torch.equal(embeddings, fused.encode("audio", rows))  # the tower run once gives both
        assert torch.equal(states, fused.reference.towers["audio"](rows))  # the pooled output, before the head
    assert states.shape == (4, widths["audio"])


def test_a_fresh_model_scores_as_the_bi_encoder_and_its_evaluation_is_the_bi_encoder_s(fused, config, test_split):
    text, text_states = encode_split_states(fused, test_split, "text")
    image, image_states = encode_split_states(fused, test_split, "image")
    with torch.no_grad():
        assert torch.equal(fused.score("text", text, "image", image, states=(text_states, image_states)), text @ image.T)
    metrics, _, _ = evaluate_model(fused, test_split, ["t2i", "a2t"])
    plain, _, _ = evaluate_model(fused.reference, test_split, ["t2i", "a2t"])
    assert metrics["rsum"] == plain["rsum"] and metrics["t2i"]["R@1"] == plain["t2i"]["R@1"]


def test_the_score_is_the_dot_product_plus_the_gated_branch_over_the_states(fused, test_split):
    perturb(fused)
    text, text_states = encode_split_states(fused, test_split, "text")
    audio, audio_states = encode_split_states(fused, test_split, "audio")
    with torch.no_grad():
        scores = fused.score("text", text[:6], "audio", audio, states=(text_states[:6], audio_states))
        x = fused.fusion.tokens("text", text_states[:6]).unsqueeze(1)
        y = fused.fusion.tokens("audio", audio_states).unsqueeze(0)
        gate = 1 / (1 + math.exp(-fused.fusion.gate.item()))
        assert torch.allclose(scores, text[:6] @ audio.T + gate * fused.fusion(x, y), atol=1e-5)
        # the branch reads the states: other states, same embeddings, other scores
        shifted = fused.score("text", text[:6], "audio", audio, states=(text_states[:6] + 1.0, audio_states))
        assert not torch.allclose(shifted, scores, atol=1e-3)
        # re-scoring candidates with their gathered states agrees with scoring the whole gallery
        top = (text[:6] @ audio.T).topk(4, dim=1).indices
        again = fused.rerank("text", text[:6], "audio", audio[top], states=(text_states[:6], audio_states[top]))
        assert torch.allclose(again, scores.gather(1, top), atol=1e-5)


def test_scoring_without_the_states_is_a_clear_error(fused):
    rows = torch.nn.functional.normalize(torch.randn(3, 16), dim=-1)
    with pytest.raises(ModelOutputError, match="pre_projection scores rows with their states"):
        capabilities.similarity(fused, "text", rows, "image", rows)


def test_evaluation_re_ranks_the_first_stage_top_k_by_the_states_brute_force(fused, test_split):
    perturb(fused)
    metrics, per_query, _ = evaluate_model(fused, test_split, ["t2a"])
    text, text_states = encode_split_states(fused, test_split, "text")
    audio, audio_states = encode_split_states(fused, test_split, "audio")
    with torch.no_grad():
        first = text @ audio.T
        top = first.topk(FUSION["k"], dim=1).indices
        every = fused.score("text", text, "audio", audio, states=(text_states, audio_states))
    expected = summarize(rank_scores(place_above(first, top, every.gather(1, top)), test_split.row_ids("text"),
                                     test_split.row_ids("audio")))
    assert metrics["t2a"]["R@1"] == expected["R@1"] and metrics["t2a"]["mAP@10"] == pytest.approx(expected["mAP@10"])
    plain, _, _ = evaluate_model(fused.reference, test_split, ["t2a"])
    assert metrics["t2a"]["R@10"] == plain["t2a"]["R@10"]  # re-ranking the top 5 only moves rows inside it


def test_training_moves_the_branch_through_the_states_and_the_loss_reads_them(fused, config):
    split = load_split(config.data, "train")
    before = {n: p.detach().clone() for n, p in fused.named_parameters() if n.startswith("fusion.")}
    train(fused.train(), split, config.train, seed=0, pairs=config.train.modality_pairs(), progress=False)
    moved = {n for n, p in fused.named_parameters() if n in before and not torch.equal(p, before[n])}
    assert {"fusion.gate", "fusion.out.weight", "fusion.expand.text.weight", "fusion.expand.audio.weight"} <= moved
    batch = make_batch(split, torch.arange(4), MODALITIES, torch.Generator().manual_seed(0))
    with torch.no_grad():
        encoded = {m: fused.encode_states(m, batch.inputs[m]) for m in MODALITIES}
        emb, states = {m: e for m, (e, _) in encoded.items()}, {m: s for m, (_, s) in encoded.items()}
        scales = capabilities.logit_scales(fused, [("text", "image")])
        logits = LossInput(emb, batch.item_ids, scales, [("text", "image")], fused, states=states).logits("text", "image")
        expected = scales["text-image"] * fused.score("text", emb["text"], "image", emb["image"],
                                                      states=(states["text"], states["image"]))
        assert torch.allclose(logits, expected)
        assert not torch.allclose(logits, scales["text-image"] * emb["text"] @ emb["image"].T, atol=1e-5)


def test_the_query_path_encodes_the_query_s_states_and_reads_the_gallery_s(fused, config, test_split):
    perturb(fused)
    gallery, gallery_states = encode_split_states(fused, test_split, "image")
    query = test_split.rows("text", torch.tensor([0]))
    with pytest.raises(ValueError, match="gallery_states"):
        query_path(fused, query, "text", gallery, gallery_modality="image")
    top = query_path(fused, query, "text", gallery, gallery_modality="image", gallery_states=gallery_states)()
    with torch.no_grad():
        q, q_states = fused.encode_states("text", query)
        first = (q @ gallery.T).topk(FUSION["k"], dim=1).indices
        rescored = fused.rerank("text", q, "image", gallery[first], states=(q_states, gallery_states[first]))
    assert torch.equal(top[0, :FUSION["k"]], first[0, rescored[0].argsort(descending=True)])
    assert len(query_function(fused, test_split, config)()[0]) == 10


def test_the_run_s_query_path_reads_the_gallery_s_states_from_the_evaluation(fused, config, test_split, monkeypatch):
    perturb(fused)
    evaluation = evaluate(fused, config, test_split)
    assert evaluation.states.keys() == evaluation.embeddings.keys()
    expected = query_function(fused, test_split, config)()
    encoded_rows = []
    encode_states = fused.encode_states

    def counted(modality, inputs):
        encoded_rows.append(len(next(iter(inputs.values()))))
        return encode_states(modality, inputs)

    monkeypatch.setattr(fused, "encode_states", counted)
    top = query_function(fused, test_split, config, evaluation.embeddings, evaluation.states)()
    assert encoded_rows == [1]  # the query alone: the gallery is not encoded again
    assert torch.equal(top, expected)


def test_cached_accumulation_is_refused_by_name(config):
    cached = resolve(config.to_dict(), {"train": {"accumulation": 2, "accumulation_mode": "cached"}})
    model, _ = build_model(cached, MODALITIES, seed=0, progress=False)
    with pytest.raises(ValueError, match="pre_projection"):
        train(model, load_split(cached.data, "train"), cached.train, seed=0, pairs=cached.train.modality_pairs(),
              progress=False)


def test_artifacts_round_trip_and_a_suite_variant_runs_end_to_end(tiny_base, config, tmp_path):
    model, _ = build_model(config, MODALITIES, seed=0, progress=False)
    train(model, load_split(config.data, "train"), config.train, seed=0, pairs=config.train.modality_pairs(),
          progress=False)
    save_artifacts(model, tmp_path / "a", config, MODALITIES, 0)
    rebuilt = load_artifacts(tmp_path / "a")
    assert isinstance(rebuilt, PreProjectionFusion)
    own = dict(model.named_parameters())
    assert all(torch.equal(p, own[n]) for n, p in rebuilt.named_parameters())
    test = load_split(config.data, "test")
    assert torch.equal(encode_split(rebuilt, test, "text"), encode_split(model, test, "text"))

    suite = parse_suite({"suite": {"name": "t"}, "base": tiny_base, "variants": {"fused": {"model.fusion": FUSION}}})
    (record,) = run_suite(suite, tmp_path / "rec", tmp_path / "art", progress=False, isolate=False)
    assert record.ok, record.error
    assert set(DIRECTIONS) <= set(record.metrics) and record.timings["query_latency_s"]["p50"] > 0
    assert [p["step"] for p in record.curve] == [3, 6] and all(math.isfinite(p["val_loss"]) for p in record.curve)


@pytest.mark.parametrize("loss", [{"name": "mixup"}, {"name": "triplet", "mining": "semi_hard"}])
def test_losses_that_score_rows_read_the_states_too(tiny_base, loss):
    config = resolve(fused_config(tiny_base, FUSION).to_dict(), {"train": {"loss": loss}})
    model, _ = build_model(config, MODALITIES, seed=0, progress=False)
    before = model.fusion.expand["text"].weight.detach().clone()
    train(model, load_split(config.data, "train"), config.train, seed=0, pairs=config.train.modality_pairs(),
          progress=False)
    assert not torch.equal(model.fusion.expand["text"].weight, before)  # the states reached the fused branch
