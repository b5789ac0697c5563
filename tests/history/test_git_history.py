"""End to end on a temporary git repository the test builds: a tiny suite, a dozen commits, and from
commit FAULT_AT on a code change that regresses the model.

The regression is a plugin module of the repo (`regress.py`, named in the suite's `[suite] plugins`):
from FAULT_AT on it sets XMBENCH_FAULT=embedding_noise=1.0 when it is imported, which xmbench's fault
injection then applies to the trained model — a stand-in for a commit that breaks the embeddings,
carried by the repo's code exactly as a real regression would be. On CPU a run is deterministic, so
the history's clean commits are filed from one measured run of the clean code and its faulty commits
from one run of the faulty code (what re-running each commit would give, bar timings), each with
`xmbench history add` at that commit; bisection runs its commits for real, in worktrees.
"""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
N_COMMITS, FAULT_AT = 12, 7
SUITE = """[suite]
name = "hist"
seeds = [0]
plugins = ["regress"]

[base.data]
domain = "source"
max_objects = 1
n_train = 96
n_val = 16
n_test = 48
image_size = 32
audio_seconds = 0.5
n_mels = 32

[base.model]
embed_dim = 16
text = { size = "tiny" }
image = { size = "tiny" }
audio = { size = "tiny" }

[base.train]
steps = 30
batch_size = 16
lr = 5e-3
warmup_steps = 3
eval_every = 0

[base.foundation]
enabled = false

[base.profile]
flops = false
alignment = false

[variants.a]

[gates]
"*.mAP" = 2.0
"*.R@10" = 5.0
"""
CLEAN = '"""No regression here."""\n'
FAULTY = ('"""A regression: embeddings drown in noise from here on."""\nimport os\n\n'
          'os.environ["XMBENCH_FAULT"] = "embedding_noise=1.0"\n')


def git(repo, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout.strip()


def xmbench(repo, *args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "XMBENCH_MACHINE_CLASS": "box"}
    env.pop("XMBENCH_FAULT", None)
    return subprocess.run([sys.executable, "-m", "xmbench.cli", *map(str, args)], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """The repository, its commits (oldest first), and one clean and one faulty measured run."""
    root = tmp_path_factory.mktemp("history-repo")
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / ".gitignore").write_text(".xmbench/\n__pycache__/\n")
    (repo / "suite.toml").write_text(SUITE)
    commits = []
    for i in range(N_COMMITS):
        (repo / "regress.py").write_text(FAULTY if i >= FAULT_AT else CLEAN)
        (repo / "notes.txt").write_text(f"change {i}\n")
        git(repo, "add", ".")
        git(repo, "commit", "-q", "-m", f"change {i}" + (" (breaks the embeddings)" if i == FAULT_AT else ""))
        commits.append(git(repo, "rev-parse", "HEAD"))
    runs = {}
    for name, commit in (("clean", commits[0]), ("faulty", commits[-1])):
        git(repo, "checkout", "-q", commit)
        done = xmbench(repo, "run", "suite.toml", "--in-process", "--no-progress", "--records", root / name,
                       "--artifacts", root / "artifacts")
        assert done.returncode == 0, done.stderr[-3000:]
        runs[name] = root / name
    git(repo, "checkout", "-q", "main")
    return repo, commits, runs


def file_history(repo, commits, runs, history, faulty_from):
    for i, commit in enumerate(commits):
        git(repo, "checkout", "-q", commit)
        records = runs["faulty" if i >= faulty_from else "clean"]
        done = xmbench(repo, "history", "add", "suite.toml", "--records", records, "--history", history)
        assert done.returncode == 0 and "→" in done.stdout, done.stderr
    git(repo, "checkout", "-q", "main")


@pytest.fixture(scope="module")
def histories(repo, tmp_path_factory):
    """The faulty history, and an A/A one: the same entries of the commits before the fault (HEAD is still
    main, so the series runs over those commits alone)."""
    import shutil

    repo_dir, commits, runs = repo
    folder = tmp_path_factory.mktemp("histories")
    file_history(repo_dir, commits, runs, folder / "faulty", FAULT_AT)
    for commit in commits[:FAULT_AT]:
        shutil.copytree(folder / "faulty" / "box" / "hist" / commit, folder / "aa" / "box" / "hist" / commit)
    return folder


def test_history_has_one_entry_per_commit_and_refuses_a_second(repo, histories):
    repo_dir, commits, runs = repo
    filed = sorted((histories / "faulty" / "box" / "hist").glob("*/*.json"))
    assert [p.parent.name for p in filed] == sorted(commits) and all(p.name == "a.json" for p in filed)
    entry = json.loads(filed[0].read_text())
    assert entry["dirty"] is False and entry["machine_class"] == "box" and entry["runs"][0]["per_query"]
    again = xmbench(repo_dir, "history", "add", "suite.toml", "--records", runs["clean"], "--history", histories / "faulty")
    assert again.returncode == 0 and "already filed" in again.stdout


def test_run_with_history_files_its_records_under_the_commit(repo, tmp_path):
    """`run --history` files what the run produced (here cached records: the run itself is skipped) under
    the checked-out commit, as `history add` would."""
    repo_dir, commits, runs = repo
    git(repo_dir, "checkout", "-q", commits[2])
    try:
        done = xmbench(repo_dir, "run", "suite.toml", "--in-process", "--no-progress", "--records", runs["clean"],
                       "--history", tmp_path / "history")
    finally:
        git(repo_dir, "checkout", "-q", "main")
    assert done.returncode == 0, done.stderr[-3000:]
    filed = list((tmp_path / "history" / "box" / "hist").glob("*/*.json"))
    assert [p.parent.name for p in filed] == [commits[2]] and filed[0].name == "a.json", done.stdout
    assert json.loads(filed[0].read_text())["dirty"] is False


def test_step_is_found_at_the_injected_commit_and_check_fails_at_the_head(repo, histories):
    repo_dir, commits, _ = repo
    shown = xmbench(repo_dir, "history", "show", "suite.toml", "--history", histories / "faulty", "--metric", "t2a.mAP")
    assert shown.returncode == 0, shown.stderr
    steps = [line for line in shown.stdout.splitlines() if line.startswith("| regression")]
    assert steps and all(commits[FAULT_AT][:10] in line for line in steps), shown.stdout
    check = xmbench(repo_dir, "history", "check", "suite.toml", "--history", histories / "faulty")
    assert check.returncode == 1 and commits[FAULT_AT][:10] in check.stdout, check.stdout + check.stderr
    before = xmbench(repo_dir, "history", "check", "suite.toml", "--history", histories / "faulty",
                     "--since", commits[FAULT_AT])
    assert before.returncode == 0, before.stdout  # a step at or before --since is acknowledged


def test_an_aa_history_has_no_step_and_passes(repo, histories):
    repo_dir, _, _ = repo
    check = xmbench(repo_dir, "history", "check", "suite.toml", "--history", histories / "aa")
    assert check.returncode == 0 and "no regression step" in check.stdout, check.stdout + check.stderr
    page = histories / "aa.html"
    shown = xmbench(repo_dir, "history", "show", "suite.toml", "--history", histories / "aa", "--html", page)
    assert shown.returncode == 0, shown.stderr
    text = page.read_text()
    assert text.count("<svg") >= 20 and "<title>" in text and "change 3" in text  # hover labels name the commits


def test_bisect_reuses_the_history_and_stops_on_a_commit_that_does_not_run(repo, histories, tmp_path):
    import shutil

    repo_dir, commits, _ = repo
    history = tmp_path / "history"
    shutil.copytree(histories / "faulty", history)
    found = xmbench(repo_dir, "bisect", "suite.toml", "--good", commits[0], "--bad", commits[-1], "--history", history)
    assert found.returncode == 0, found.stdout + found.stderr
    assert f"first bad commit: {commits[FAULT_AT]} change {FAULT_AT} (breaks the embeddings)" in found.stdout
    assert "mAP dropped" in found.stdout and "(0 runs, 5 commits from the history)" in found.stdout  # good + ⌈log2 11⌉
    git(repo_dir, "checkout", "-q", "-b", "broken", commits[-1])
    (repo_dir / "regress.py").write_text("raise ImportError('the build is broken')\n")
    git(repo_dir, "commit", "-q", "-am", "break the build")
    git(repo_dir, "checkout", "-q", "main")
    broken = xmbench(repo_dir, "bisect", "suite.toml", "--good", commits[-1], "--bad", "broken", "--history", history)
    assert broken.returncode == 2 and "(break the build) does not build or run the suite" in broken.stderr, broken.stderr
    assert git(repo_dir, "worktree", "list").count("\n") == 0  # the worktree removed after the failure


def test_bad_input_is_a_clear_error(repo, histories, tmp_path):
    repo_dir, _, _ = repo
    missing = xmbench(repo_dir, "history", "show", "suite.toml", "--history", tmp_path / "none")
    assert missing.returncode == 2 and "no history of suite 'hist'" in missing.stderr
    unknown = xmbench(repo_dir, "bisect", "suite.toml", "--good", "nope", "--bad", "HEAD", "--history", tmp_path / "h")
    assert unknown.returncode == 2 and "unknown revision 'nope'" in unknown.stderr
    metric = xmbench(repo_dir, "history", "show", "suite.toml", "--history", histories / "aa", "--metric", "t2i R@2")
    assert metric.returncode == 2 and "--metric t2i R@2: not in the history" in metric.stderr


@pytest.mark.slow  # five real runs in worktrees (~30 s on 2 cores); the default run covers bisection from the history
def test_bisect_names_the_injected_commit_within_log2_runs(repo, tmp_path):
    repo_dir, commits, _ = repo
    done = xmbench(repo_dir, "bisect", "suite.toml", "--good", commits[0], "--bad", commits[-1], "--in-process",
                   "--history", tmp_path / "history")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"first bad commit: {commits[FAULT_AT]} change {FAULT_AT} (breaks the embeddings)" in done.stdout, done.stdout
    runs = int(done.stdout.rsplit("(", 1)[1].split(" runs")[0])
    assert runs <= math.ceil(math.log2(N_COMMITS - 1)) + 1
    assert git(repo_dir, "worktree", "list").count("\n") == 0  # every worktree removed
    assert git(repo_dir, "status", "--porcelain") == ""  # the user's tree untouched
    again = xmbench(repo_dir, "bisect", "suite.toml", "--good", commits[0], "--bad", commits[-1], "--in-process",
                    "--history", tmp_path / "history")
    assert again.returncode == 0 and "(0 runs," in again.stdout  # every tested commit came from the history
