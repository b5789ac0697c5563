"""The `xmbench history add | show | check` and `xmbench bisect` commands (parsers in xmbench/cli.py)."""
from __future__ import annotations

from pathlib import Path

from xmbench.bench.compare import is_timing
from xmbench.errors import ConfigError, XmbenchError
from xmbench.history import series as series_mod
from xmbench.history import steps as steps_mod
from xmbench.history import store, trend

DEFAULT_SHOWN = ("rsum", "query_latency_s", "step_time_s")


def _machine(args) -> str:
    from xmbench.bench.baseline import machine_class

    return machine_class(args.machine_class)


def file_records(suite, records, history: Path, machine: str, repo: Path | str = ".") -> list[str]:
    """File the suite's records under the commit of `repo`; lines saying what was filed or skipped."""
    from xmbench.bench.env import git_state

    state = git_state()
    if not state["commit"]:
        raise XmbenchError("not inside a git repository with a commit: history files runs under the commit they measured")
    commit = store.commit_info(repo, state["commit"])
    lines = []
    for entry in store.make_entries(records, commit, machine, bool(state["dirty"])):
        path = store.file_entry(history, entry)
        if path is None:
            lines.append(f"history: {entry.variant} at {commit.sha[:10]} already filed (append-only: the first is kept)")
        else:
            note = " (dirty tree: kept for the trend, never a reference point)" if entry.dirty else ""
            lines.append(f"history: {entry.variant} at {commit.sha[:10]} → {path}{note}")
    return lines


def cmd_history_add(args) -> int:
    from xmbench.cli import _suite_records
    from xmbench.suite import load_suite

    suite = load_suite(args.suite)
    records = _suite_records(suite, args.records)
    if args.variant:
        records = [r for r in records if r.variant in args.variant]
    print("\n".join(file_records(suite, records, args.history, _machine(args))))
    return 0


def load_history(args):
    """The suite, its clean entries by variant in commit order, and the metrics to show."""
    from xmbench.suite import load_suite

    suite = load_suite(args.suite)
    machine = _machine(args)
    entries = store.read_entries(args.history, machine, suite.name)
    if not entries:
        raise XmbenchError(f"no history of suite '{suite.name}' on machine class '{machine}' under "
                           f"{store.suite_dir(args.history, machine, suite.name)}; file runs with "
                           f"`xmbench history add {args.suite}`")
    chosen = args.variant or series_mod.variants(entries)
    unknown = [v for v in chosen if v not in series_mod.variants(entries)]
    if unknown:
        raise ConfigError(f"--variant {unknown[0]}: no history entries of it; known: {', '.join(series_mod.variants(entries))}")
    ordered = series_mod.ordered(entries)
    by_variant = {v: [e for e in ordered if e.variant == v] for v in chosen}
    return suite, machine, by_variant


def _metrics(args, by_variant, default: tuple[str, ...] | None) -> list[str]:
    known = series_mod.metric_names([e for es in by_variant.values() for e in es])
    asked = [args.metric] if isinstance(args.metric, str) else args.metric
    if asked and asked != ["all"]:
        wanted = [series_mod.normalise_metric(m) for m in asked]
        for metric in wanted:
            if metric not in known:
                from xmbench.errors import did_you_mean

                raise ConfigError(f"--metric {metric}: not in the history{did_you_mean(metric, known)}; "
                                  f"known: {', '.join(known)}")
        return wanted
    if default is None or asked == ["all"]:
        return known
    return [m for m in default if m in known]


def _rules(suite, args):
    return [r for r in suite.gates if not (getattr(args, "no_timing_gates", False) and is_timing(r.metric))]


def all_steps(by_variant, metrics, rules) -> list[steps_mod.Step]:
    found = []
    for entries in by_variant.values():
        cache: dict = {}  # one comparison per pair of sides, shared by the variant's series
        found.extend(s for m in metrics for s in steps_mod.detect(entries, m, rules, cache))
    return found


def cmd_history_show(args) -> int:
    suite, machine, by_variant = load_history(args)
    metrics = _metrics(args, by_variant, None if args.html else DEFAULT_SHOWN)
    found = all_steps(by_variant, metrics, _rules(suite, args))
    if args.html:
        args.html.parent.mkdir(parents=True, exist_ok=True)
        args.html.write_text(trend.page(suite.name, machine, by_variant, metrics, found))
        print(f"wrote {args.html}")
        return 0
    commits = len({e.commit for es in by_variant.values() for e in es})
    print(f"## History of suite `{suite.name}` on `{machine}`: {commits} commits\n")
    for metric in metrics:
        print(trend.table(by_variant, metric, found) + "\n")
    print("### Steps\n\n" + trend.steps_table(found))
    return 0


def cmd_history_check(args) -> int:
    """Exit 1 when the head stands in a regression step of any gated series."""
    suite, machine, by_variant = load_history(args)
    metrics = _metrics(args, by_variant, None)
    found = all_steps(by_variant, metrics, _rules(suite, args))
    standing = steps_mod.head_regressions(found)
    rules, stood = _rules(suite, args), {(s.variant, s.metric) for s in standing}
    for variant, entries in by_variant.items():  # a drift: steps under the threshold that add up beyond it
        cache: dict = {}
        standing.extend(d for m in metrics if (variant, m) not in stood
                        and (d := steps_mod.drift(entries, m, rules, cache)) is not None)
    if args.since:
        after = set(store.git(".", "rev-list", f"{store.commit_info('.', args.since).sha}..HEAD").split())
        standing = [s for s in standing if s.commit in after]
    heads = ", ".join(f"{v} @ {es[-1].commit[:10]}" for v, es in by_variant.items() if es)
    if not standing:
        print(f"history check: suite `{suite.name}` has no regression step at the head ({heads}; {len(metrics)} series each)")
        return 0
    print(f"history check: suite `{suite.name}` stands in {len(standing)} regression step(s):\n")
    print(trend.steps_table(standing))
    return 1


def cmd_bisect(args) -> int:
    import os

    from xmbench.history.bisect import Bisector, bisect
    from xmbench.suite import load_suite

    environment = dict(os.environ)  # before the suite's plugins import: what they set is the tree's, not a commit's
    suite = load_suite(args.suite)
    variant = args.variant or suite.variants[0].name
    suite.variant(variant)  # an unknown name fails with a did-you-mean
    repo = Path(store.git(".", "rev-parse", "--show-toplevel"))
    run_args = (["--in-process"] if args.in_process else []) + (["--timeout", str(args.timeout)] if args.timeout else [])
    bisector = Bisector(repo, suite.name, Path(args.suite), variant, _rules(suite, args), args.history, _machine(args),
                        args.metric, run_args, environment=environment)
    found = bisect(bisector, args.good, args.bad)
    print(f"first bad commit: {found.first_bad.sha} {found.first_bad.subject}")
    for reason in found.violations:
        print(f"  {reason}")
    print(f"({found.runs} runs, {found.reused} commits from the history)")
    return 0
