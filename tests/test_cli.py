"""The CLI, black-box: subprocesses, as a user runs it."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def xmbench(*args, cwd=ROOT, check=False, env_extra=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), **(env_extra or {})}
    result = subprocess.run([sys.executable, "-m", "xmbench.cli", *map(str, args)], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_smoke_suite_runs_and_reports(tmp_path):
    suite = tmp_path / "smoke.toml"  # the CI suite at two seeds (CI runs all eight through the gate anyway)
    suite.write_text((ROOT / "suites/smoke.toml").read_text().replace("seeds = [0, 1, 2, 3, 4, 5, 6, 7]", "seeds = [0, 1]"))
    records = tmp_path / "records"
    run = xmbench("run", suite, "--records", records, "--artifacts", tmp_path / "art", "--no-progress", check=True)
    assert "| lora_r8 " in run.stdout and "t2i R@1" in run.stdout
    files = sorted(p.name for p in (records / "smoke").iterdir())
    assert files == [f"lora_r{r}__seed{s}.json" for r in (4, 8) for s in range(2)]
    assert json.loads((records / "smoke" / files[0]).read_text())["status"] == "ok"
    report = xmbench("report", "--markdown", "--records", records, "--out", tmp_path / "r.md", check=True)
    assert report.stdout.strip() == (tmp_path / "r.md").read_text().strip()
    assert "| lora_r4 " in report.stdout and "peak_rss_mb" in report.stdout


def test_bad_suite_is_a_clear_error_without_records(tmp_path):
    suite = tmp_path / "bad.toml"
    suite.write_text('[variants.x]\n"train.los" = "infonce"\n')
    result = xmbench("run", suite, "--records", tmp_path / "records")
    assert result.returncode == 2
    assert f"xmbench: error: {suite}: variant 'x': train.los: unknown key 'los' (did you mean 'loss'?)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "records").exists()


def test_validate_list_and_unknown_variant(tmp_path):
    ok = xmbench("validate", ROOT / "suites/smoke.toml", ROOT / "suites/quickstart.toml", check=True)
    assert "suite 'quickstart', 4 variants" in ok.stdout
    listing = xmbench("list", check=True)
    for name in ("lora", "infonce", "synthetic", "manifest", "minilm", "vit", "ast", "cosine", "epoch", "fp32",
                 "merge", "ensemble"):
        assert f"  {name} " in listing.stdout
    assert "      rank: int = 8  — r, the rank of the update." in listing.stdout  # options, defaults, docs
    for kind in ("dataset", "tower", "adapter", "head", "loss", "regularizer", "schedule", "sampler", "precision",
                 "callback", "transform", "derived"):
        one = xmbench("list", kind, check=True)
        assert one.stdout.startswith(f"{kind} (") and one.stdout.count(" (") >= 1
    assert xmbench("list", "heads", check=True).stdout.startswith("head (model.head):")
    unknown = xmbench("list", "haed")
    assert unknown.returncode == 2 and "unknown kind 'haed' (did you mean 'head'?)" in unknown.stderr
    wrong = xmbench("run", ROOT / "suites/smoke.toml", "--variant", "lora_r9", "--records", tmp_path / "r")
    assert wrong.returncode == 2 and "did you mean 'lora_r8'" in wrong.stderr


PLUGIN_HEAD = '''"""A user's head, registered from outside xmbench."""
from dataclasses import dataclass

from xmbench.registry import HEADS


@dataclass(frozen=True)
class ScaledOptions:
    """Options of scaled_linear.

    Attributes:
        scale: multiplies the projection's output.
    """

    scale: float = 0.5


@HEADS.register("scaled_linear", ScaledOptions)
def scaled_linear(in_dim, embed_dim, options):
    """A linear head whose output is scaled."""
    import torch

    class Scaled(torch.nn.Linear):
        def forward(self, x):
            return super().forward(x) * options.scale

    return Scaled(in_dim, embed_dim)
'''


def installed_plugin(site: Path) -> Path:
    """A distribution on the path with an entry point in the group xmbench.plugins, as pip would install it."""
    site.mkdir()
    (site / "ep_losses.py").write_text("from xmbench.registry import LOSSES\n\n\n@LOSSES.register('ep_loss')\n"
                                       "def ep_loss(inputs, options):\n    \"\"\"An installed plugin's loss.\"\"\"\n")
    info = site / "xmb_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: xmb-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[xmbench.plugins]\nlosses = ep_losses\n")
    return site


def test_list_shows_where_plugin_techniques_come_from(tmp_path):
    (tmp_path / "my_heads.py").write_text(PLUGIN_HEAD)
    site = installed_plugin(tmp_path / "site")
    listing = xmbench("list", "--plugin", "my_heads", cwd=tmp_path, check=True,
                      env_extra={"PYTHONPATH": f"{ROOT}{os.pathsep}{site}"}).stdout.splitlines()
    assert "  ep_loss      An installed plugin's loss.  [plugin ep_losses]" in listing
    assert "  scaled_linear A linear head whose output is scaled.  [plugin my_heads]" in listing
    assert "      scale: float = 0.5  — multiplies the projection's output." in listing
    builtin = [line for line in listing if line.startswith("  infonce ")]
    assert builtin == ["  infonce      Symmetric InfoNCE (CLIP): cross-entropy both ways over in-batch negatives, "
                       "per modality pair."]  # built-ins read as before: no suffix
    missing = xmbench("list", "--plugin", "no_such_plugin", cwd=tmp_path)
    assert missing.returncode == 2 and "--plugin: cannot import plugin module 'no_such_plugin'" in missing.stderr


def test_validate_checks_a_plugin_suite_and_reports_plugin_problems(tmp_path):
    (tmp_path / "my_heads.py").write_text(PLUGIN_HEAD)
    (tmp_path / "dup_heads.py").write_text(PLUGIN_HEAD.replace("scaled_linear\"", "linear\""))
    good = tmp_path / "good.toml"  # the smoke suite with a variant of the plugin's head
    good.write_text((ROOT / "suites/smoke.toml").read_text().replace("seeds = [0, 1, 2, 3, 4, 5, 6, 7]",
                                                                     'seeds = [0]\nplugins = ["my_heads"]')
                    + '\n[variants.scaled_head]\n"model.head" = { name = "scaled_linear", scale = 0.25 }\n')
    ok = xmbench("validate", good, cwd=tmp_path, check=True)
    assert f"{good}: ok — suite 'smoke', 3 variants × 1 seeds" in ok.stdout
    missing, dup = tmp_path / "missing.toml", tmp_path / "dup.toml"
    missing.write_text('[suite]\nplugins = ["my_heads", "no_such_plugin"]\n')
    dup.write_text('[suite]\nplugins = ["dup_heads"]\n')
    result = xmbench("validate", missing, dup, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (f"xmbench: error: {missing}: suite.plugins: cannot import plugin module 'no_such_plugin': "
            f"ModuleNotFoundError: No module named 'no_such_plugin'") in result.stderr
    assert (f"xmbench: error: {dup}: suite.plugins: plugin module 'dup_heads': head 'linear' is registered twice: "
            f"first by built-in xmbench.models.heads.linear, again by plugin dup_heads") in result.stderr
    assert "2 problems found" in result.stderr


def test_report_without_records_says_how_to_make_them(tmp_path):
    result = xmbench("report", "--records", tmp_path / "none")
    assert result.returncode == 2 and "run `xmbench run SUITE` first" in result.stderr


def test_data_export_writes_a_loadable_manifest(tmp_path):
    out = tmp_path / "set"
    xmbench("data", "export", out, "--set", "data.n_train=3", "--set", "data.n_val=2", "--set", "data.n_test=2",
            "--set", "data.image_size=24", check=True)
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["split"] for r in rows] == ["train"] * 3 + ["val"] * 2 + ["test"] * 2
    assert all((out / r["image"]).exists() and (out / r["audio"]).exists() and len(r["captions"]) == 5 for r in rows)


def test_baseline_accept_compare_and_gate(tmp_path):
    records, baselines = tmp_path / "records", tmp_path / "baselines"
    suite = tmp_path / "three.toml"
    suite.write_text((ROOT / "tests/bench/three_variants.toml").read_text())
    common = ["--baselines", baselines, "--machine-class", "box"]
    missing = xmbench("gate", suite, "--records", records, *common)
    assert missing.returncode == 2 and "no records of suite 'three'" in missing.stderr
    xmbench("run", suite, "--records", records, "--artifacts", tmp_path / "art", "--no-progress", "--in-process",
            check=True)
    no_baseline = xmbench("gate", suite, "--records", records, *common)
    assert no_baseline.returncode == 2 and "xmbench baseline accept" in no_baseline.stderr
    xmbench("baseline", "accept", suite, "--records", records, "--force", *common, check=True)
    assert (baselines / "box" / "three.json").exists()
    compared = xmbench("compare", suite, "--records", records, "--all", *common, check=True)
    assert "| ~      | a" in compared.stdout and "trainable_params" in compared.stdout
    summary = tmp_path / "summary.md"
    gated = xmbench("gate", suite, "--records", records, *common, env_extra={"GITHUB_STEP_SUMMARY": str(summary)})
    assert gated.returncode == 0 and "passed" in gated.stdout
    assert "xmbench gate: suite `three` passed" in summary.read_text()
    report = xmbench("report", "--records", records, "--suite", "three", *common, check=True)
    assert "## Against the baseline" in report.stdout
    as_json = xmbench("report", "--json", "--records", records, check=True)
    assert {row["variant"] for row in json.loads(as_json.stdout)} == {"a", "b", "c"}
    html = xmbench("report", "--html", "--records", records, "--out", tmp_path / "r.html", check=True)
    assert "wrote" in html.stdout and (tmp_path / "r.html").stat().st_size > 10_000


def test_every_report_format_renders_a_suite_of_failed_runs(tmp_path):
    from xmbench.bench.record import Record, write_record

    for variant, error in (("a", "ConfigError: model.factory: cannot import 'nope:make'"),
                           ("b", "NonFiniteLossError: loss became nan at step 0 (pairs: text-image=nan)")):
        write_record(Record(suite="broken", variant=variant, variant_id=variant, seed=0, status="failed", config={},
                            error=error), tmp_path / "records")
    common = ["--records", tmp_path / "records", "--suite", "broken"]
    markdown = xmbench("report", "--markdown", *common, check=True)
    assert "_no successful runs_" in markdown.stdout and "- `b` seed 0: NonFiniteLossError" in markdown.stdout
    html = xmbench("report", "--html", *common, "--out", tmp_path / "r.html", check=True)
    assert html.returncode == 0 and "Failed runs (2 of 2)" in (tmp_path / "r.html").read_text()
    as_json = json.loads(xmbench("report", "--json", *common, check=True).stdout)
    assert [row["status"] for row in as_json] == ["failed", "failed"]
    assert "status" in xmbench("report", "--csv", *common, check=True).stdout
    write_record(Record(suite="other", variant="c", variant_id="c", seed=0, status="failed", config={}, error="E: x"),
                 tmp_path / "records")
    both = json.loads(xmbench("report", "--json", *common, "--suite", "other", check=True).stdout)
    assert sorted((row["suite"], row["variant"]) for row in both) == [("broken", "a"), ("broken", "b"), ("other", "c")]


def test_the_roadmap_report_renders_as_markdown_and_as_a_page(tmp_path):
    from tests.report.test_roadmap import suite_records
    from xmbench.bench.record import write_record

    for record in suite_records():
        write_record(record, tmp_path / "records")
    common = ["--roadmap", "--records", tmp_path / "records"]
    markdown = xmbench("report", *common, check=True).stdout
    assert "## Next steps" in markdown and "`cheap`" in markdown.split("## Pareto fronts")[1]
    page = xmbench("report", *common, "--html", "--out", tmp_path / "roadmap.html", check=True)
    assert "wrote" in page.stdout and (tmp_path / "roadmap.html").read_text().count("<img") == 3
