"""The one training step: what a loss receives, how parts are weighed, regularisers, scorer models."""
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.models.reference import build_reference
from xmbench.registry import LOSSES, REGULARIZERS, Entry, NoOptions
from xmbench.train.engine import make_batch
from xmbench.train.step import TrainingStep

PAIRS = [("text", "image"), ("text", "audio"), ("image", "audio")]


@pytest.fixture
def setup(tiny_config):
    split = load_split(tiny_config.data, "train")
    torch.manual_seed(0)
    model = build_reference(tiny_config, split.modalities)
    batch = make_batch(split, torch.tensor([5, 1, 7, 3]), ["audio", "image", "text"], torch.Generator().manual_seed(0))
    return tiny_config, model, batch


def register(monkeypatch, registry, name, builder, options=NoOptions):
    monkeypatch.setitem(registry._entries, name, Entry(name, builder, options, ""))


def test_the_loss_sees_ids_scales_model_step_and_progress(setup, monkeypatch):
    config, model, batch = setup
    seen = {}

    def spy(inputs, options):
        seen.update(vars(inputs))
        return LOSSES.get("infonce")(inputs, options)

    register(monkeypatch, LOSSES, "spy", spy)
    step = TrainingStep(model, dataclasses.replace(config.train, loss=LOSSES.default("spy")), PAIRS)
    step(batch, step=3, progress=0.5)
    assert {m: ids.tolist() for m, ids in seen["item_ids"].items()} == dict.fromkeys(("audio", "image", "text"), [5, 1, 7, 3])
    assert set(seen["logit_scales"]) == {"text-image", "text-audio", "image-audio"}
    assert seen["logit_scales"]["text-image"].item() == pytest.approx(1 / 0.07)
    assert seen["model"] is model and seen["step"] == 3 and seen["progress"] == 0.5 and seen["teacher"] is None
    assert all(e.shape == (4, 16) for e in seen["embeddings"].values())


def test_pair_weights_and_regularisers_are_summed_in_one_place(setup, monkeypatch):
    config, model, batch = setup
    plain = TrainingStep(model, config.train, PAIRS)(batch)
    parts = {k: v.item() for k, v in plain.parts.items()}
    assert plain.total.item() == pytest.approx(sum(parts.values()) / 3, rel=1e-6)

    @dataclasses.dataclass(frozen=True)
    class Weight:
        weight: float = 0.5

    register(monkeypatch, REGULARIZERS, "norm", lambda inputs, options: options.weight * inputs.embeddings["text"].sum(),
             Weight)
    cfg = resolve({**{"train": {"pair_weights": {"text-image": 3.0, "image-audio": 0.0}}}},
                  {"train.regularizers": [{"name": "norm", "weight": 0.25}]}).train
    cfg = dataclasses.replace(config.train, pair_weights=cfg.pair_weights, regularizers=cfg.regularizers)
    weighted = TrainingStep(model, cfg, PAIRS)(batch)
    reg = 0.25 * weighted.embeddings["text"].sum().item()
    expected = (3 * parts["text-image"] + parts["text-audio"]) / 4 + reg
    assert weighted.total.item() == pytest.approx(expected, rel=1e-5)
    assert weighted.parts["reg/norm"].item() == pytest.approx(reg, rel=1e-6)


def test_equal_weights_give_exactly_the_plain_mean(setup):
    """The weighting is written so that the reference (all weights 1) computes bit for bit the plain mean."""
    config, model, batch = setup
    out = TrainingStep(model, config.train, PAIRS)(batch)
    assert torch.equal(out.total, torch.stack(list(out.parts.values())).mean())


class Bilinear(torch.nn.Module):
    """A model that scores pairs itself: similarity qᵀWg, not a dot product of embeddings."""

    modalities = ("text", "image", "audio")

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.eye(4) + 0.5)

    def encode(self, modality, inputs):
        x = next(iter(inputs.values())).float()
        return F.normalize(x.reshape(len(x), -1)[:, :4] + 1.0, dim=-1)

    def score(self, query_modality, queries, gallery_modality, gallery):
        return queries @ self.w @ gallery.T


def test_a_scoring_model_trains_on_its_own_scores(setup):
    config, _, batch = setup
    model = Bilinear()
    out = TrainingStep(model, config.train, [("image", "audio")])(batch)
    logits = (1 / 0.07) * out.embeddings["image"] @ model.w @ out.embeddings["audio"].T
    target = torch.arange(4)
    expected = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    assert out.total.item() == pytest.approx(expected.item(), rel=1e-5)
    out.total.backward()
    assert model.w.grad is not None and model.w.grad.abs().sum() > 0


def clip_loss(a, b, scale):
    """Symmetric InfoNCE by hand: row i of a and row i of b are the positive pair."""
    logits = scale * a @ b.T
    target = torch.arange(len(a))
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def ragged_batch(tiny_config):
    """Items 5, 1, 7, 3: item 1 has no image, item 7 no audio."""
    split = load_split(tiny_config.data, "train")
    present = {m: torch.ones(len(split), dtype=torch.bool) for m in ("text", "image", "audio")}
    present["image"][1] = present["audio"][7] = False
    ragged = dataclasses.replace(split, present=present)
    return make_batch(ragged, torch.tensor([5, 1, 7, 3]), ["audio", "image", "text"], torch.Generator().manual_seed(0))


def test_items_lacking_a_modality_train_each_pair_on_the_rows_that_have_both(setup):
    config, model, _ = setup
    batch = ragged_batch(config)
    assert {m: ids.tolist() for m, ids in batch.item_ids.items()} == {
        "text": [5, 1, 7, 3], "image": [5, 7, 3], "audio": [5, 1, 3]}  # an absent row is not encoded
    assert len(batch) == 4 and len(batch.inputs["image"]["pixel_values"]) == 3
    out = TrainingStep(model, config.train, PAIRS)(batch)
    text, image, audio = (out.embeddings[m].detach() for m in ("text", "image", "audio"))
    scale = 1 / 0.07
    expected = {"text-image": clip_loss(text[[0, 2, 3]], image, scale),  # items 5, 7, 3
                "text-audio": clip_loss(text[[0, 1, 3]], audio, scale),  # items 5, 1, 3
                "image-audio": clip_loss(image[[0, 2]], audio[[0, 2]], scale)}  # items 5, 3
    for pair, value in expected.items():
        assert out.parts[pair].item() == pytest.approx(value.item(), rel=1e-5)
    assert out.total.item() == pytest.approx(sum(v.item() for v in expected.values()) / 3, rel=1e-5)
    assert torch.isfinite(out.per_item).all()  # every item is in at least one pair


def test_an_item_in_no_trained_pair_reports_no_loss(setup):
    config, model, _ = setup
    out = TrainingStep(model, config.train, [("image", "audio")])(ragged_batch(config))
    assert out.per_item[[1, 2]].isnan().all() and torch.isfinite(out.per_item[[0, 3]]).all()
    assert set(out.parts) == {"image-audio"}


def test_complete_items_take_the_usual_path(setup):
    """A batch whose items have every modality carries no mask: its objective is the one it always was."""
    config, model, batch = setup
    assert batch.present is None
    split = load_split(config.data, "train")
    marked = dataclasses.replace(split, present={m: torch.ones(len(split), dtype=torch.bool) for m in PAIRS[0]})
    again = make_batch(marked, torch.tensor([5, 1, 7, 3]), ["audio", "image", "text"], torch.Generator().manual_seed(0))
    assert again.present is None
    step = TrainingStep(model, config.train, PAIRS)
    assert torch.equal(step(again).total, step(batch).total)
