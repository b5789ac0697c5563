"""The frozen-tower feature cache: same features, each row computed once, kept across runs, out of the way when it must."""
import pytest
import torch

from xmbench.bench.runner import run_suite
from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.models.feature_cache import FeatureCache, row_keys
from xmbench.models.reference import build_reference
from xmbench.suite import parse_suite

FROZEN_TEXT = {"model.text.adapter": "frozen"}


def frozen_text_model(tiny_base):
    config = resolve(tiny_base, FROZEN_TEXT)
    split = load_split(config.data, "train")
    torch.manual_seed(0)
    return build_reference(config, split.modalities), split


def counted(tower) -> list[int]:
    """Rows the tower's backbone actually ran on, call by call."""
    calls = []
    tower.backbone.register_forward_hook(lambda module, args, kwargs, out: calls.append(kwargs["input_ids"].shape[0]),
                                         with_kwargs=True)
    return calls


def test_cached_features_equal_the_towers_and_each_row_runs_once(tiny_base, tmp_path):
    model, split = frozen_text_model(tiny_base)
    tower = model.towers["text"]
    batch = split.rows("text", torch.arange(10))
    expected = tower(batch)
    with model.frozen_feature_cache(tmp_path, max_mb=64) as caches:
        calls = counted(tower)
        first = tower(batch)
        overlapping = tower(split.rows("text", torch.arange(5, 15)))  # rows 5-9 seen, 10-14 new
        again = tower(batch)
    assert list(caches) == ["text"]  # the image and audio towers train (LoRA): not cached
    assert torch.allclose(first, expected, atol=1e-6) and torch.equal(again, first)
    assert torch.allclose(overlapping[:5], first[5:], atol=1e-6)
    assert calls == [10, 5]  # the new rows only, and nothing for the third call
    assert caches["text"].stats() | {"stored_mb": 0} == {"hits": 15, "misses": 15, "entries": 15, "stored_mb": 0,
                                                          "retired": False}


def test_padding_does_not_split_entries():
    ids = torch.tensor([[101, 7, 8, 102, 0, 0], [101, 9, 102, 0, 0, 0]])
    mask = (ids != 0).long()
    narrow = {"input_ids": ids[:, :4], "attention_mask": mask[:, :4]}
    wide = {"input_ids": ids, "attention_mask": mask}
    assert row_keys(narrow, "cpu") == row_keys(wide, "cpu")
    left = {"input_ids": torch.tensor([[0, 0, 101, 7, 8, 102], [0, 0, 0, 101, 9, 102]])}
    left["attention_mask"] = (left["input_ids"] != 0).long()  # padded on the left: the same captions
    assert row_keys(left, "cpu") == row_keys(wide, "cpu")
    assert len(set(row_keys(wide, "cpu"))) == 2 and row_keys(wide, "cpu") != row_keys(wide, "cuda")


def test_the_cache_survives_the_run_and_is_keyed_by_the_weights(tiny_base, tmp_path):
    model, split = frozen_text_model(tiny_base)
    batch = split.rows("text", torch.arange(8))
    with model.frozen_feature_cache(tmp_path, max_mb=64):
        model.towers["text"](batch)
    with model.frozen_feature_cache(tmp_path, max_mb=64) as caches:  # a later run: warm from disk
        calls = counted(model.towers["text"])
        model.towers["text"](batch)
    assert calls == [] and caches["text"].hits == 8
    with torch.no_grad():
        next(model.towers["text"].parameters()).add_(1.0)  # other weights: other features, another file
    with model.frozen_feature_cache(tmp_path, max_mb=64) as caches:
        model.towers["text"](batch)
    assert caches["text"].misses == 8 and len(list((tmp_path / "text").glob("*.pt"))) == 2


def test_a_tower_unfrozen_mid_run_leaves_the_cache(tiny_base, tmp_path):
    model, split = frozen_text_model(tiny_base)
    tower = model.towers["text"]
    batch = split.rows("text", torch.arange(4))
    with model.frozen_feature_cache(tmp_path, max_mb=64) as caches:
        tower(batch)
        for p in tower.parameters():
            p.requires_grad_(True)  # progressive unfreezing reached this tower
        out = tower(batch)
        for p in tower.parameters():
            p.requires_grad_(False)  # frozen again: the keys no longer vouch for the weights
        tower(batch)
    assert out.requires_grad and caches["text"].stats()["retired"]
    assert caches["text"].hits == 0 and not (tmp_path / "text").exists()  # a retired cache writes nothing


def test_the_size_cap_bounds_what_is_kept(tiny_base, tmp_path):
    model, split = frozen_text_model(tiny_base)
    tower = model.towers["text"]
    row_mb = tower.hidden_size * 4 / 2 ** 20
    cache = FeatureCache(tower, tmp_path, max_mb=3.5 * row_mb)
    tower.feature_cache = cache
    tower(split.rows("text", torch.arange(6)))
    assert len(cache.entries) == 3 and cache.misses == 6


def flat(metrics: dict) -> dict[str, float]:
    return {f"{d}/{k}": v for d, values in metrics.items() if isinstance(values, dict) for k, v in values.items()}


def test_a_run_with_the_cache_measures_what_it_measures_without(tiny_base, tmp_path):
    cached = {**FROZEN_TEXT, "train.feature_cache_mb": 64}
    suite = parse_suite({"suite": {"name": "fc"}, "base": {**tiny_base, "profile": {"flops": False, "alignment": False}},
                         "variants": {"plain": FROZEN_TEXT, "cached": cached,
                                      "cached_lr": {**cached, "train.lr": 2e-3}}})  # same text tower, other training
    records = {r.variant: r for r in run_suite(suite, tmp_path / "rec", tmp_path / "art", progress=False, isolate=False)}
    plain, first, second = records["plain"], records["cached"], records["cached_lr"]
    assert all(r.ok for r in records.values()), [r.error for r in records.values()]
    assert flat(first.metrics) == pytest.approx(flat(plain.metrics), abs=1e-6) and len(flat(plain.metrics)) >= 6
    assert first.metrics["rsum"] == pytest.approx(plain.metrics["rsum"], abs=1e-4)
    assert "feature_cache" not in plain.profile
    cold, warm = first.profile["feature_cache"]["text"], second.profile["feature_cache"]["text"]
    assert cold["misses"] > 0 and cold["hits"] > 0  # later epochs of the first run hit
    assert warm["misses"] == 0 and warm["hits"] == cold["hits"] + cold["misses"]  # warm from the first run's file


def test_an_entry_made_during_validation_serves_training(tiny_base, tmp_path):
    model, split = frozen_text_model(tiny_base)
    tower, head = model.towers["text"], model.heads["text"]
    batch = split.rows("text", torch.arange(4))
    with model.frozen_feature_cache(tmp_path, max_mb=64):
        with torch.inference_mode():  # validation computes and stores these rows
            tower(batch)
        head(tower(batch)).sum().backward()  # training reads them: the head still gets its gradient
    assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0
