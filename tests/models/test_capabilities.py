"""Capabilities: the precision policy runs inside encode; a model that scores pairs is ranked by its scores."""
import pytest
import torch
import torch.nn.functional as F

from tests.conftest import user_model
from xmbench.bench.runner import run_suite
from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.eval.retrieval import evaluate_model
from xmbench.models import capabilities
from xmbench.models.reference import build_reference
from xmbench.registry import PRECISIONS, Entry, NoOptions
from xmbench.suite import parse_suite
from xmbench.train.precision import PrecisionPolicy


class Recording(PrecisionPolicy):
    entered: list = []

    def context(self, component, device_type="cpu"):
        Recording.entered.append(component)
        return super().context(component, device_type)


def test_the_precision_policy_wraps_each_component_in_training_evaluation_and_latency(tiny_base, monkeypatch, tmp_path):
    monkeypatch.setitem(PRECISIONS._entries, "recording", Entry("recording", lambda options: Recording(), NoOptions, ""))
    base = {**tiny_base, "profile": {"latency": True, "batch_sizes": [2], "min_repeats": 1, "min_time_s": 0.0}}
    suite = parse_suite({"suite": {"name": "prec"}, "base": base, "variants": {"a": {"train.precision": "recording"}}})
    Recording.entered.clear()
    (record,) = run_suite(suite, tmp_path / "r", tmp_path / "a", progress=False, isolate=False)
    assert record.ok, record.error
    assert set(Recording.entered) == {f"{part}/{m}" for part in ("tower", "head") for m in ("text", "image", "audio")}
    # training steps, validation, evaluation, the query path and the latency probes all went through it
    assert len(Recording.entered) > 2 * 3 * tiny_base["train"]["steps"]


class Bilinear(torch.nn.Module):
    """Scores pairs itself: qᵀWg. Its embeddings' dot products rank differently."""

    modalities = ("image", "audio")

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.proj = torch.nn.ModuleDict({"image": torch.nn.Linear(3 * 32 * 32, 8), "audio": torch.nn.Linear(51 * 32, 8)})
        self.w = torch.nn.Parameter(torch.randn(8, 8))

    def encode(self, modality, inputs):
        return F.normalize(self.proj[modality](next(iter(inputs.values())).flatten(1)), dim=-1)

    def score(self, query_modality, queries, gallery_modality, gallery):
        return queries @ self.w @ gallery.T


def bilinear(config):
    return Bilinear()


def test_a_scoring_model_is_evaluated_by_its_scores(tiny_config):
    split = load_split(tiny_config.data, "test")
    model = Bilinear()
    metrics, _, embeddings = evaluate_model(model, split, ["i2a", "a2i"])
    from xmbench import evaluate_retrieval, evaluate_scores

    by_scores = evaluate_scores(embeddings["image"] @ model.w.detach() @ embeddings["audio"].T, split.ids, split.ids)
    by_dot = evaluate_retrieval(embeddings["image"], embeddings["audio"], split.ids, split.ids)
    assert metrics["i2a"]["mAP"] == pytest.approx(by_scores["mAP"]) and metrics["i2a"]["mAP"] != by_dot["mAP"]


def test_a_scoring_model_runs_through_a_suite(tiny_base, tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    suite = parse_suite({"suite": {"name": "score"}, "base": tiny_base,
                         "variants": {"fused": user_model("tests.models.test_capabilities:bilinear")}})
    (record,) = run_suite(suite, tmp_path / "r", tmp_path / "a", progress=False, isolate=False)
    assert record.ok, record.error
    assert set(record.metrics) == {"i2a", "a2i", "rsum"} and "query_latency_s" in record.timings
    assert "alignment" not in record.profile  # embedding geometry is not what a scorer ranks by


def test_defaults_for_a_model_without_capabilities():
    class Plain:
        modalities = ("text",)

        def encode(self, modality, inputs):
            return torch.ones(1, 2)

    plain = Plain()
    assert capabilities.parameters(plain) == [] and capabilities.device_of(plain) == torch.device("cpu")
    assert capabilities.component_of(plain, "encoder.layer.0.weight") == "encoder"
    assert not capabilities.can_score(plain) and capabilities.resized(plain, "image", 64) is plain
    assert capabilities.set_training(plain, True) is False and capabilities.move(plain, torch.device("cpu")) is plain


def test_the_reference_model_names_its_parts(tiny_config):
    model = build_reference(tiny_config, ("text", "image"))
    assert list(capabilities.components(model)) == ["tower/text", "tower/image", "head/text", "head/image"]
    assert capabilities.component_of(model, "temperature.log_scale") == "temperature"
    assert capabilities.component_of(model, "towers.image.backbone.x") == "tower/image"
    twin = capabilities.resized(model, "image", 48)
    assert twin is not model and twin.encode("image", {"pixel_values": torch.randn(2, 3, 48, 48)}).shape == (2, 16)
    assert resolve({}).config_id()  # (the twin is built from the model's own config)
