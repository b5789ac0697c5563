from pathlib import Path

import pytest

from xmbench.errors import ConfigError
from xmbench.suite import load_suite

SUITE = """
[suite]
name = "demo"
seeds = [0, 1]

[base.train]
steps = 5

[variants.a]

[variants.b]
"model.*.adapter.rank" = 4

[matrix]
"train.lr" = [0.001, 0.003]
"""


def test_variants_cross_the_matrix_and_seeds(tmp_path):
    path = tmp_path / "demo.toml"
    path.write_text(SUITE)
    suite = load_suite(path)
    assert [v.name for v in suite.variants] == ["a[train.lr=0.001]", "a[train.lr=0.003]",
                                                 "b[train.lr=0.001]", "b[train.lr=0.003]"]
    assert len(suite.runs()) == 8
    b = suite.variant("b[train.lr=0.003]")
    assert b.config.train.steps == 5 and b.config.train.lr == 0.003
    assert b.config.model.audio.adapter.options.rank == 4
    assert len({v.variant_id for v in suite.variants}) == 4


def test_shipped_suites_validate():
    shipped = sorted(Path(__file__).resolve().parents[1].joinpath("suites").glob("*.toml"))
    assert {"smoke", "quickstart", "day2_peft", "day7_models"} <= {p.stem for p in shipped}
    for path in shipped:
        assert load_suite(path).variants, path


def test_profile_table_sets_every_variants_profile(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text("[profile]\nlatency = true\nbatch_sizes = [2]\n[variants.a]\n[variants.b]\n\"profile.latency\" = false\n")
    a, b = load_suite(path).variants
    assert a.config.profile.latency and a.config.profile.batch_sizes == [2]
    assert not b.config.profile.latency and b.config.profile.batch_sizes == [2]
    path.write_text("[profile]\nlatency = true\n[base.profile]\nflops = false\n")
    with pytest.raises(ConfigError, match=r"\[profile\] or as \[base.profile\], not both"):
        load_suite(path)


@pytest.mark.parametrize("text, message", [
    ("[suite\nname = 1", r"malformed TOML"),
    ("[suit]\n", r"unknown table 'suit' \(did you mean 'suite'\?\)"),
    ("[base.train]\nstepz = 1\n", r"base\.train\.stepz: unknown key 'stepz' \(did you mean 'steps'\?\)"),
    ("[variants.x]\n\"train.lr\" = \"fast\"\n", r"variant 'x': train\.lr: expected float"),
    ("[variants.x]\n\"train.loss\" = \"infonse\"\n",
     r"variant 'x': train\.loss: unknown loss 'infonse' \(did you mean 'infonce'\?\)"),
    ("[base.train]\nloss = \"infonec\"\n", r"base\.train\.loss: unknown loss 'infonec'"),
    ("[suite]\nseeds = []\n", r"suite\.seeds"),
    ("[matrix]\n\"train.lr\" = 3\n", r"matrix\.train\.lr: expected a non-empty list"),
    ("[profile]\nlatncy = true\n", r"base\.profile\.latncy: unknown key 'latncy' \(did you mean 'latency'\?\)"),
    ("[profile]\nbatch_sizes = [0, 8]\n", r"profile\.batch_sizes: must be a non-empty list of positive numbers"),
    ("[base.train]\ndevice = \"gpu\"\n", r"train\.device: 'gpu' is not one of cpu, cuda, auto"),
    ("[variants.a]\n[derived.e]\nname = \"ensemble\"\ninputs = [\"b\"]\n", r"derived\.e\.inputs: no variant 'b'"),
    ("[variants.a]\n[derived.e]\nname = \"ensembel\"\ninputs = [\"a\"]\n", r"derived\.e: unknown derived 'ensembel'"),
    ("[variants.a]\n[derived.a]\nname = \"ensemble\"\ninputs = [\"a\"]\n", r"derived\.a: a variant of that name exists"),
])
def test_bad_suites_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_suite(path)
    assert str(path) in str(info.value)


def test_missing_suite_file(tmp_path):
    with pytest.raises(ConfigError, match="no such suite file"):
        load_suite(tmp_path / "nope.toml")


def test_derived_runs_follow_the_variants_and_hash_their_inputs(tmp_path):
    path = tmp_path / "d.toml"
    path.write_text(SUITE + '[derived.ens]\nname = "ensemble"\ninputs = ["a[train.lr=0.001]", "b[train.lr=0.001]"]\n')
    suite = load_suite(path)
    (ens,) = suite.derived
    assert [v.name for v, _ in suite.runs()][-2:] == ["ens", "ens"]
    assert ens.input_ids == tuple(suite.variant(n).variant_id for n in ens.inputs)
    assert ens.technique.name == "ensemble" and ens.config == suite.variant("a[train.lr=0.001]").config
    path.write_text(SUITE.replace("rank\" = 4", "rank\" = 2") + '[derived.ens]\nname = "ensemble"\n'
                    'inputs = ["a[train.lr=0.001]", "b[train.lr=0.001]"]\n')
    assert load_suite(path).derived[0].variant_id != ens.variant_id  # an input's config changed


def test_parsing_a_suite_imports_no_torch():
    """`xmbench validate` and pytest collection parse suites: they must not pay for torch."""
    import subprocess
    import sys

    code = ("import sys; from xmbench.suite import load_suite; "
            "[load_suite(f'suites/{n}.toml') for n in ('smoke', 'quickstart', 'profile', 'lora_rank')]; "
            "from xmbench.registry import ALL_REGISTRIES; [r.entries() for r in ALL_REGISTRIES]; "
            "heavy = [m for m in ('torch', 'torchaudio', 'torchvision', 'transformers', 'peft') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stdout + result.stderr


def test_included_suites_bring_their_variants_onto_this_suites_base(tmp_path):
    (tmp_path / "day_a.toml").write_text('[base.train]\nsteps = 99\n[variants.ref]\n[variants.r4]\n"model.*.adapter.rank" = 4\n'
                                         '[derived.both]\nname = "ensemble"\ninputs = ["ref", "r4"]\n')
    (tmp_path / "day_b.toml").write_text('[variants.ref]\n[variants.lr]\n"train.lr" = 0.002\n')
    (tmp_path / "all.toml").write_text('[suite]\nname = "all"\nreference = "ref"\ninclude = ["day_a.toml", "day_b.toml"]\n'
                                       '[base.train]\nsteps = 7\n')
    suite = load_suite(tmp_path / "all.toml")
    assert [v.name for v in suite.variants] == ["ref", "r4", "lr"] and [d.name for d in suite.derived] == ["both"]
    assert {v.config.train.steps for v in suite.variants} == {7}  # this suite's base, not the included ones'
    assert suite.variant("r4").config.model.image.adapter.options.rank == 4


@pytest.mark.parametrize("included, message", [
    ('[variants.ref]\n"train.lr" = 0.002\n', "variants.ref is defined differently in day_a.toml and in day_b.toml"),
    ('[suite]\ninclude = ["day_a.toml"]\n', "day_b.toml includes other suites itself"),
    (None, "no such suite file"),
])
def test_bad_includes_name_the_file_and_the_variant(tmp_path, included, message):
    (tmp_path / "day_a.toml").write_text("[variants.ref]\n")
    if included is not None:
        (tmp_path / "day_b.toml").write_text(included)
    (tmp_path / "all.toml").write_text('[suite]\ninclude = ["day_a.toml", "day_b.toml"]\n')
    with pytest.raises(ConfigError, match=message) as info:
        load_suite(tmp_path / "all.toml")
    assert str(info.value).startswith(str(tmp_path / "all.toml"))
