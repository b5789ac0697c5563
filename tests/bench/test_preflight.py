"""Preflight, black-box through the CLI: every problem of every suite, its data and its model, before any run."""
import json
from pathlib import Path

import numpy as np
import torch

from tests.test_cli import ROOT, xmbench

TINY = """
[suite]
name = "{name}"
[base.data]
name = "{dataset}"
manifest = "{manifest}"
n_train = 24
n_val = 8
n_test = 12
image_size = 32
audio_seconds = 0.5
n_mels = 32
[base.model]
factory = "{factory}"
{model}[base.train]
steps = 4
batch_size = {batch}
eval_every = 2
[base.foundation]
enabled = false
[variants.a]
"""

TINY_MODEL = """embed_dim = 16
text = { size = "tiny" }
image = { size = "tiny" }
audio = { size = "tiny" }
"""


def suite(tmp_path, name="pre", dataset="synthetic", manifest="", factory="reference", batch=8) -> Path:
    path = tmp_path / f"{name}.toml"
    model = TINY_MODEL if factory == "reference" else ""  # a factory model takes none of the reference's keys
    path.write_text(TINY.format(name=name, dataset=dataset, manifest=manifest, factory=factory, model=model, batch=batch))
    return path


def exported(tmp_path) -> Path:
    out = tmp_path / "set"
    xmbench("data", "export", out, "--set", "data.n_train=6", "--set", "data.n_val=2", "--set", "data.n_test=4",
            "--set", "data.image_size=32", "--set", "data.audio_seconds=0.5", check=True)
    return out / "manifest.jsonl"


class Plain:
    """A model that is no torch module: two fixed projections, nothing to train."""

    modalities = ("text", "image", "audio")

    def encode(self, modality, inputs):
        x = next(iter(inputs.values())).float().flatten(1)
        projection = torch.Generator().manual_seed(len(modality))
        weights = torch.randn(x.shape[1], 8, generator=projection)
        return torch.nn.functional.normalize(x @ weights, dim=-1)


class WrongWidth(Plain):
    def encode(self, modality, inputs):
        out = super().encode(modality, inputs)
        return out[:, :7] if modality == "image" else out


class Flat(Plain):
    def encode(self, modality, inputs):
        return super().encode(modality, inputs)[:, 0]


class NotFinite(Plain):
    def encode(self, modality, inputs):
        out = super().encode(modality, inputs)
        return out * float("nan") if modality == "audio" else out


def plain(config):
    return Plain()


def wrong_width(config):
    return WrongWidth()


def flat(config):
    return Flat()


def not_finite(config):
    return NotFinite()


def test_bad_manifest_files_and_rows_are_all_listed_and_nothing_runs(tmp_path):
    from PIL import Image

    manifest = exported(tmp_path)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    Image.fromarray(np.full((32, 32), 40000, dtype=np.uint16)).save(manifest.parent / rows[0]["image"])  # 16-bit: fine
    wav = manifest.parent / rows[1]["audio"]
    wav.write_bytes(wav.read_bytes()[:3000])  # cut short
    rows[2]["id"] = rows[0]["id"]  # duplicate id
    rows[3]["split"] = "tset"  # unknown split
    rows[4]["captions"] = "a lone red circle"  # a string, not a list
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    path = suite(tmp_path, dataset="manifest", manifest=manifest, batch=4)
    result = xmbench("validate", path)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("xmbench: error:")]
    assert any(":2: audio file" in e and "is truncated" in e for e in errors)
    assert any(":3: id" in e and "is used already at line 1" in e for e in errors)
    assert any(":4: split 'tset'" in e and "did you mean 'test'" in e for e in errors)
    assert any(":5: captions of item" in e and "is a string" in e for e in errors)
    assert not any(":1:" in e for e in errors)  # the 16-bit PNG is converted, not an error
    assert "4 problems found; nothing was run or written" in result.stderr
    run = xmbench("run", path, "--records", tmp_path / "records", "--in-process", "--no-progress")
    assert run.returncode == 2 and not (tmp_path / "records").exists()


def test_validate_reports_every_bad_suite_not_the_first(tmp_path):
    first = tmp_path / "one.toml"
    first.write_text("[variants.a]\n\"train.los\" = 1\n")
    second = tmp_path / "two.toml"
    second.write_text("[suit]\n")
    result = xmbench("validate", first, second, ROOT / "suites/smoke.toml")
    assert result.returncode == 2
    assert f"{first}: variant 'a': train.los: unknown key 'los'" in result.stderr
    assert f"{second}: unknown table 'suit'" in result.stderr and "2 problems found" in result.stderr


def test_user_models_are_imported_and_their_encode_checked(tmp_path):
    env = {"PYTHONPATH": str(ROOT)}
    cases = {
        "missing": ("tests.bench.test_preflight:nowhere", "cannot import 'tests.bench.test_preflight:nowhere'"),
        "width": ("tests.bench.test_preflight:wrong_width", "different widths (text 8, image 7, audio 8)"),
        "flat": ("tests.bench.test_preflight:flat", "model.encode('text', …) returned shape (2,)"),
        "nan": ("tests.bench.test_preflight:not_finite", "model.encode('audio', …) returned NaN or infinite values"),
    }
    paths = {name: suite(tmp_path, name=name, factory=factory) for name, (factory, _) in cases.items()}
    result = xmbench("validate", *paths.values(), env_extra=env)
    assert result.returncode == 2
    for name, (_, message) in cases.items():
        assert any(str(paths[name]) in line and message in line for line in result.stderr.splitlines()), (name, result.stderr)


def test_a_plain_object_model_runs_end_to_end(tmp_path):
    path = suite(tmp_path, factory="tests.bench.test_preflight:plain")
    run = xmbench("run", path, "--records", tmp_path / "records", "--artifacts", tmp_path / "art", "--no-progress",
                  env_extra={"PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    record = json.loads((tmp_path / "records" / "pre" / "a__seed0.json").read_text())
    assert record["status"] == "ok" and record["costs"]["trainable_params"] == 0 and len(record["steps"]) == 4
    assert set(record["metrics"]) == {"t2i", "i2t", "t2a", "a2t", "i2a", "a2i", "rsum"}


def test_a_batch_larger_than_the_data_is_refused(tmp_path):
    result = xmbench("validate", suite(tmp_path, batch=512))
    assert result.returncode == 2
    assert "train.batch_size: 512 is more than the 24 items of the training split" in result.stderr
