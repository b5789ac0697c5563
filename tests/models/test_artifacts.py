"""load_artifacts rebuilds a trained variant from what save_artifacts wrote, with identical embeddings."""
import json

import torch

from tests.conftest import user_model
from xmbench.bench.runner import run_suite
from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.eval.retrieval import encode_split
from xmbench.models.artifacts import load_artifacts
from xmbench.models.reference import ReferenceModel
from xmbench.registry import TRANSFORMS
from xmbench.suite import parse_suite

MODALITIES = ("text", "image", "audio")


def trained(tiny_base, tmp_path, variant):
    suite = parse_suite({"suite": {"name": "art"}, "base": tiny_base, "variants": {"v": variant}})
    captured = {}
    from xmbench.bench.runner import run_variant

    record = run_variant("art", suite.variants[0], 0, tmp_path / "art", progress=False,
                         on_model=lambda model, split: captured.update(model=model, split=split))
    assert record.ok, record.error
    return captured["model"], captured["split"], tmp_path / "art" / "v__seed0"


def test_round_trip_gives_identical_embeddings(tiny_base, tmp_path):
    model, split, folder = trained(tiny_base, tmp_path, {"model.audio.adapter.method": "full"})
    assert sorted(p.name for p in (folder / "adapters").iterdir()) == ["image", "text"]  # peft's format
    assert (folder / "trained.safetensors").exists()  # the fully fine-tuned audio tower
    rebuilt = load_artifacts(folder)
    assert isinstance(rebuilt, ReferenceModel)
    for m in MODALITIES:
        assert torch.equal(encode_split(rebuilt, split, m), encode_split(model, split, m)), m
    assert json.loads((folder / "run.json").read_text())["seed"] == 0


def test_adapter_bytes_are_the_adapter_tensors_not_peft_metadata(tiny_base, tmp_path):
    """adapter_bytes counts what the adapter weighs, by hand from the saved tensors: peft's
    adapter_config.json and README.md (which grow with peft releases) are not part of it."""
    from safetensors.torch import load_file

    from xmbench.models.artifacts import save_artifacts

    model, _, _ = trained(tiny_base, tmp_path, {"model.audio.adapter.method": "full"})
    again = tmp_path / "again"
    adapter_bytes = save_artifacts(model, again, resolve(tiny_base, {"model.audio.adapter.method": "full"}),
                                   MODALITIES, 0)
    by_hand = sum(t.numel() * t.element_size() for m in ("text", "image")
                  for t in load_file(str(again / "adapters" / m / "adapter_model.safetensors")).values())
    by_hand += sum(t.numel() * t.element_size() for k, t in load_file(str(again / "trained.safetensors")).items()
                   if k.startswith("towers.audio."))
    assert adapter_bytes == by_hand
    metadata = sum((again / "adapters" / m / f).stat().st_size for m in ("text", "image")
                   for f in ("adapter_config.json", "README.md"))
    assert metadata > 0 and adapter_bytes < sum(f.stat().st_size for f in again.rglob("*") if f.is_file()) - metadata


def test_merge_transform_keeps_embeddings(tiny_base, tmp_path):
    model, split, folder = trained(tiny_base, tmp_path, {})
    with torch.no_grad():  # adapters well away from their zero init, so merging has work to do
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.3)
    before = {m: encode_split(model, split, m) for m in MODALITIES}
    merged = TRANSFORMS.bind(TRANSFORMS.default("merge"))(model)
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    for m in MODALITIES:
        cosine = torch.nn.functional.cosine_similarity(encode_split(merged, split, m), before[m])
        assert cosine.min() >= 0.99999, m


def test_merge_in_a_suite_changes_no_metric(tiny_base, tmp_path):
    suite = parse_suite({"suite": {"name": "mg"}, "base": tiny_base,
                         "variants": {"plain": {}, "merged": {"transforms": ["merge"]}}})
    plain, merged = run_suite(suite, tmp_path / "r", tmp_path / "a", progress=False, isolate=False)
    assert plain.ok and merged.ok, merged.error
    for direction in ("t2i", "a2t", "i2a"):
        assert abs(plain.metrics[direction]["mAP"] - merged.metrics[direction]["mAP"]) < 1e-3
    assert merged.costs["trainable_params"] == 1 + sum(p.numel() for n, p in load_artifacts(
        tmp_path / "a" / "mg" / "merged__seed0").named_parameters() if n.startswith("heads."))


class Linear(torch.nn.Module):
    modalities = ("image", "audio")

    def __init__(self):
        super().__init__()
        self.image = torch.nn.Linear(32 * 32 * 3, 8)
        self.audio = torch.nn.LazyLinear(8)

    def encode(self, modality, inputs):
        x = next(iter(inputs.values())).flatten(1)
        return torch.nn.functional.normalize(getattr(self, modality)(x), dim=-1)


def linear_model(config):
    model = Linear()
    model.audio = torch.nn.Linear(51 * 32, 8)
    return model


def test_a_user_model_round_trips_through_its_trainable_tensors(tiny_base, tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    model, split, folder = trained(tiny_base, tmp_path, user_model("tests.models.test_artifacts:linear_model"))
    rebuilt = load_artifacts(folder)
    for m in ("image", "audio"):
        assert torch.equal(encode_split(rebuilt, split, m), encode_split(model, split, m))


def test_split_cache_is_read_without_unpickling_code(tiny_config, tmp_path, monkeypatch):
    """A cache file holding a pickled object (code run at load) is a cache miss, not code execution."""
    from xmbench.data import cache

    class Evil:
        def __reduce__(self):
            return (exec, ("raise SystemExit('unpickled arbitrary code')",))

    monkeypatch.setenv("XMBENCH_CACHE", str(tmp_path))
    path = cache.split_path(tiny_config.data, "test")
    path.parent.mkdir(parents=True)
    torch.save({"evil": Evil()}, path)
    assert cache.load_split(path) is None
    load_split.cache_clear() if hasattr(load_split, "cache_clear") else None
