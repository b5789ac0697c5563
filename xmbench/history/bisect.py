"""Bisection: the first commit between a good and a bad revision where a variant got significantly worse.

How a commit is measured: `git worktree add --detach` checks it out under a temporary folder (the
user's working tree is never touched), and `python -m xmbench.cli run SUITE --variant V --force` runs
there in this same interpreter, with the worktree as its working directory and, when the worktree
holds the `xmbench` package, the worktree first on PYTHONPATH (so that commit's xmbench runs; else the
installed one). Nothing is installed: a commit that needs other packages than this environment has
fails like any commit that does not run. The suite file is the commit's own copy when the suite lies
inside the repo, else the given file. The worktree is removed in `finally`, whatever happened.
A run that exits with an error, writes no record or only failed ones stops the bisection naming the
commit. Its entries are filed in the history, and a commit the history already holds is not run again.

The rule: a commit is bad when comparing its runs with the good revision's (compare's statistics)
breaks one of the suite's gate rules on the chosen metric (all gated metrics by default) — the same
rule `history check` applies to a step. The search assumes the bad revision is bad and halves the
commits of `good..bad` (ancestry path) until one is left: at most ⌈log2 n⌉ runs besides the good one;
the bad revision itself is run only when every commit before it proved good, to confirm it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from xmbench.bench.compare import Delta, compare_variant
from xmbench.bench.gate import GateRule
from xmbench.bench.record import read_records
from xmbench.errors import XmbenchError
from xmbench.history.series import normalise_metric, to_records
from xmbench.history.store import Commit, Entry, clean_entry, commit_info, file_entry, git, make_entries


@dataclass
class Bisection:
    """What the search found and what it cost."""

    first_bad: Commit
    violations: list[str]  # the gate rule breaks of the first bad commit against the good one
    runs: int  # commits run in a worktree
    reused: int  # commits taken from the history
    tested: list[tuple[str, bool]] = field(default_factory=list)  # (commit, bad?) in test order


@dataclass
class Bisector:
    """The fixed parts of one bisection: where, what to run, what to judge by."""

    repo: Path
    suite_name: str
    suite_path: Path
    variant: str
    rules: list[GateRule]
    history: Path
    machine: str
    metric: str | None = None
    run_args: list[str] = field(default_factory=list)
    environment: dict[str, str] | None = None  # the runs' environment (default: this process's)
    log: Callable[[str], None] = print
    runs: int = 0
    reused: int = 0

    def entry(self, commit: Commit) -> Entry:
        """The commit's entry: from the history, else measured in a worktree and filed."""
        known = clean_entry(self.history, self.machine, self.suite_name, commit.sha, self.variant)
        if known is not None:
            self.reused += 1
            self.log(f"xmbench bisect: {commit.sha[:10]} from the history")
            return known
        self.log(f"xmbench bisect: running {self.variant} at {commit.sha[:10]} {commit.subject}")
        records = self._run(commit)
        self.runs += 1
        entry = make_entries(records, commit, self.machine, dirty=False)[0]
        file_entry(self.history, entry)
        return entry

    def _run(self, commit: Commit) -> list:
        scratch = Path(tempfile.mkdtemp(prefix="xmbench-bisect-"))
        tree = scratch / "tree"
        try:
            git(self.repo, "worktree", "add", "--detach", str(tree), commit.sha)
            done = subprocess.run(self._command(tree, scratch), cwd=tree, env=self._env(tree), capture_output=True,
                                  text=True)
            records = [r for r in read_records(scratch / "records", self.suite_name) if r.variant == self.variant]
            if done.returncode not in (0, 1) or not records or not any(r.ok for r in records):
                why = (done.stderr.strip().splitlines() or ["no output"])[-1] if done.returncode not in (0, 1) or not records \
                    else (next(r.error for r in records if r.error) or "").splitlines()[0]
                raise XmbenchError(f"commit {commit.sha[:10]} ({commit.subject}) does not build or run the suite "
                                   f"(exit {done.returncode}): {why}; bisection stopped there")
            return records
        finally:
            subprocess.run(["git", "-C", str(self.repo), "worktree", "remove", "--force", str(tree)], capture_output=True)
            shutil.rmtree(scratch, ignore_errors=True)
            subprocess.run(["git", "-C", str(self.repo), "worktree", "prune"], capture_output=True)

    def _command(self, tree: Path, scratch: Path) -> list[str]:
        suite = self.suite_path
        try:
            inside = tree / suite.resolve().relative_to(self.repo)
            suite = inside if inside.exists() else suite
        except ValueError:  # the suite lives outside the repo: the same file for every commit
            pass
        return [sys.executable, "-m", "xmbench.cli", "run", str(suite), "--variant", self.variant, "--force",
                "--no-progress", "--records", str(scratch / "records"), "--artifacts", str(scratch / "artifacts"),
                *self.run_args]

    def _env(self, tree: Path) -> dict[str, str]:
        env = dict(os.environ if self.environment is None else self.environment)
        if (tree / "xmbench" / "__init__.py").exists():  # the commit's own xmbench, not the installed one
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
        return env

    def violations(self, entry: Entry, good: Entry) -> list[str]:
        """The gate rule breaks of `entry` against the good entry, on the chosen metric."""
        deltas = compare_variant(self.variant, to_records([entry]), to_records([good]))
        reasons = []
        for delta in deltas:
            if self.metric and not _names_metric(delta, self.metric):
                continue
            for rule in self.rules:
                reason = rule.violated_by(delta)
                if reason:
                    reasons.append(f"{rule.key}: {reason}")
        return reasons


def _names_metric(delta: Delta, metric: str) -> bool:
    """`--metric` as a series name ('t2i R@1', 't2i.R@1') or a rule's wildcard ('*.R@1', '* R@1')."""
    direction, _, name = normalise_metric(metric).partition(" ")
    if direction == "*":
        return delta.metric.partition(" ")[2] == name
    return delta.metric == normalise_metric(metric)


def commits_between(repo: Path, good: str, bad: str) -> tuple[Commit, list[Commit]]:
    """The good commit, and the commits after it up to and including bad (oldest first)."""
    good_commit, bad_commit = commit_info(repo, good), commit_info(repo, bad)
    ancestor = subprocess.run(["git", "-C", str(repo), "merge-base", "--is-ancestor", good_commit.sha, bad_commit.sha])
    if ancestor.returncode:
        raise XmbenchError(f"--good {good} ({good_commit.sha[:10]}) is not an ancestor of --bad {bad} "
                           f"({bad_commit.sha[:10]})")
    shas = git(repo, "rev-list", "--reverse", "--ancestry-path", f"{good_commit.sha}..{bad_commit.sha}").split()
    if not shas:
        raise XmbenchError(f"no commits between --good {good} and --bad {bad}")
    return good_commit, [commit_info(repo, s) for s in shas]


def bisect(bisector: Bisector, good: str, bad: str) -> Bisection:
    """Binary search over good..bad for the first commit that breaks a gate rule against good."""
    good_commit, candidates = commits_between(bisector.repo, good, bad)
    good_entry = bisector.entry(good_commit)
    tested: list[tuple[str, bool]] = []
    found: dict[int, list[str]] = {}
    low, high = -1, len(candidates) - 1  # candidates[low] good (-1: the good revision), candidates[high] bad
    while high - low > 1:
        middle = (low + high) // 2
        reasons = bisector.violations(bisector.entry(candidates[middle]), good_entry)
        tested.append((candidates[middle].sha, bool(reasons)))
        if reasons:
            high, found[middle] = middle, reasons
        else:
            low = middle
    if high not in found:  # only the bad revision is left: confirm it
        reasons = bisector.violations(bisector.entry(candidates[high]), good_entry)
        tested.append((candidates[high].sha, bool(reasons)))
        if not reasons:
            scope = f"on {bisector.metric}" if bisector.metric else "on any gated metric"
            raise XmbenchError(f"--bad {bad} ({candidates[high].sha[:10]}) is not significantly worse than --good {good} "
                               f"{scope} beyond the suite's gate thresholds; nothing to bisect")
        found[high] = reasons
    return Bisection(candidates[high], found[high], bisector.runs, bisector.reused, tested)
