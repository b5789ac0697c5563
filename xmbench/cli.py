"""`xmbench run | profile | validate | list | report | compare | gate | baseline | history | bisect | data export`."""
from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from xmbench.errors import ConfigError, XmbenchError, did_you_mean


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except XmbenchError as exc:
        print(f"xmbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("xmbench: interrupted; finished records are kept", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xmbench", description="Benchmark PEFT-tuned cross-modal retrieval models.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a suite, write records, print the tables")
    run.add_argument("suite", type=Path)
    run.add_argument("--records", type=Path, default=None, help="records folder (default .xmbench/records)")
    run.add_argument("--artifacts", type=Path, default=None, help="adapters folder (default .xmbench/artifacts)")
    run.add_argument("--variant", action="append", help="run only this variant (repeatable)")
    run.add_argument("--force", action="store_true", help="re-run variants that have a complete record")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--in-process", action="store_true", help="run variants in this process (no isolation)")
    run.add_argument("--timeout", type=float, help="seconds per variant × seed (default: suite.timeout_s)")
    run.add_argument("--gate", action="store_true", help="compare with the baseline and exit 1 on a gate violation")
    run.add_argument("--executor", choices=("local", "pool", "ray"), default="local",
                     help="where runs go: one at a time here (default), a pool of --workers here, or a Ray cluster")
    run.add_argument("--workers", type=int, default=None, help="runs at once (pool, ray)")
    run.add_argument("--address", help="Ray cluster address (default: a local cluster)")
    run.add_argument("--nproc", type=int, default=1, help="ranks per run: torchrun + DDP, one model on N processes/GPUs")
    run.add_argument("--history", type=Path, nargs="?", const=Path(".xmbench/history"), default=None, metavar="DIR",
                     help="file the records in the results history under the current commit (default DIR .xmbench/history)")
    _baseline_options(run)
    run.set_defaults(handler=cmd_run)

    prof = sub.add_parser("profile", help="profile variants: torch.profiler traces, memory, latency, FLOPs, dynamics")
    prof.add_argument("suite", type=Path)
    prof.add_argument("--variant", action="append", help="profile only this variant (repeatable; default: all)")
    prof.add_argument("--seed", type=int, help="the seed to profile (default: the suite's first)")
    prof.add_argument("--records", type=Path, default=None, help="records folder (default .xmbench/records)")
    prof.add_argument("--trace-dir", type=Path, help="where traces go (default: profile.trace_dir, reports/profiles)")
    prof.add_argument("--no-progress", action="store_true")
    prof.add_argument("--in-process", action="store_true", help="run in this process (no isolation)")
    prof.add_argument("--timeout", type=float, help="seconds per variant (default: suite.timeout_s)")
    prof.set_defaults(handler=cmd_profile)

    baseline = sub.add_parser("baseline", help="manage stored baselines")
    baseline_sub = baseline.add_subparsers(dest="baseline_command", required=True)
    accept = baseline_sub.add_parser("accept", help="store the suite's current records as its baseline")
    accept.add_argument("suite", type=Path)
    accept.add_argument("--records", type=Path, default=None)
    accept.add_argument("--force", action="store_true", help="accept even with uncommitted changes")
    _baseline_options(accept)
    accept.set_defaults(handler=cmd_baseline_accept)

    compare = sub.add_parser("compare", help="compare records with the baseline, or with another records folder")
    compare.add_argument("suite", type=Path)
    compare.add_argument("--records", type=Path, default=None)
    compare.add_argument("--against", type=Path, help="a records folder to compare with instead of the baseline")
    compare.add_argument("--all", action="store_true", help="show unchanged rows too")
    _baseline_options(compare)
    compare.set_defaults(handler=cmd_compare)

    gate = sub.add_parser("gate", help="check the suite's gates against the baseline; exit 1 on a violation")
    gate.add_argument("suite", type=Path)
    gate.add_argument("--records", type=Path, default=None)
    _baseline_options(gate)
    gate.set_defaults(handler=cmd_gate)

    validate = sub.add_parser("validate", help="check suites, their data and models without running them")
    validate.add_argument("suites", type=Path, nargs="+")
    validate.set_defaults(handler=cmd_validate)

    listing = sub.add_parser("list", help="list registered techniques")
    listing.add_argument("kind", nargs="?", help="only this kind (e.g. loss, adapter, head)")
    listing.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                         help="import this plugin module first, as a suite's [suite] plugins does (repeatable)")
    listing.set_defaults(handler=cmd_list)

    report = sub.add_parser("report", help="render stored records")
    report.add_argument("--markdown", action="store_true", help="GitHub-flavoured markdown tables (default)")
    report.add_argument("--html", action="store_true",
                        help="one self-contained page with plots (to --out; with --roadmap, the roadmap's page)")
    report.add_argument("--json", action="store_true", help="records as JSON rows (pandas-friendly)")
    report.add_argument("--csv", action="store_true", help="records as CSV rows")
    report.add_argument("--roadmap", action="store_true",
                        help="every technique of every suite with a reference, and the next steps in priority order")
    report.add_argument("--records", type=Path, default=None)
    report.add_argument("--suite", action="append", help="only this suite (repeatable: these suites)")
    report.add_argument("--out", type=Path, help="write the report here (HTML default: reports/report.html, "
                                                        "reports/roadmap.html with --roadmap)")
    _baseline_options(report)
    report.set_defaults(handler=cmd_report)

    _history_parsers(sub)

    data = sub.add_parser("data", help="dataset tools")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    export = data_sub.add_parser("export", help="write the built-in set as PNG + WAV files and a manifest")
    export.add_argument("out", type=Path)
    export.add_argument("--set", action="append", default=[], metavar="data.KEY=VALUE",
                        help="override a data setting, e.g. --set data.n_train=200 (TOML value syntax)")
    export.set_defaults(handler=cmd_data_export)
    return parser


def _history_parsers(sub) -> None:
    """`history add | show | check` and `bisect` (xmbench/history/commands.py)."""
    history = sub.add_parser("history", help="results across commits: file runs, show trends, check for steps")
    history_sub = history.add_subparsers(dest="history_command", required=True)
    add = history_sub.add_parser("add", help="file the suite's records under the current commit")
    add.add_argument("suite", type=Path)
    add.add_argument("--records", type=Path, default=None, help="records folder (default .xmbench/records)")
    show = history_sub.add_parser("show", help="a table per metric over commits, or a page of plots (--html)")
    show.add_argument("suite", type=Path)
    show.add_argument("--html", type=Path, nargs="?", const=Path("reports/history.html"), default=None, metavar="OUT",
                      help="write a page with one plot per metric (default OUT reports/history.html)")
    check = history_sub.add_parser("check", help="exit 1 when the head stands in a regression step")
    check.add_argument("suite", type=Path)
    check.add_argument("--since", metavar="REV", help="only steps at commits after REV count")
    bisect = sub.add_parser("bisect", help="find the first commit where a variant got significantly worse")
    bisect.add_argument("suite", type=Path)
    bisect.add_argument("--good", required=True, metavar="REV")
    bisect.add_argument("--bad", required=True, metavar="REV")
    bisect.add_argument("--in-process", action="store_true", help="run each commit's variant in its xmbench process")
    bisect.add_argument("--timeout", type=float, help="seconds per variant × seed")
    for parser, handler in ((add, "cmd_history_add"), (show, "cmd_history_show"), (check, "cmd_history_check"),
                            (bisect, "cmd_bisect")):
        parser.add_argument("--history", type=Path, default=Path(".xmbench/history"), metavar="DIR",
                            help="history folder (default .xmbench/history)")
        parser.add_argument("--machine-class", help="override the machine class derived from the hardware")
        if parser is not add:
            parser.add_argument("--metric", action="append" if parser is show else None,
                                help="a series: rsum, 't2i R@1' (or t2i.R@1), query_latency_s, ...; show: repeatable or 'all'")
            parser.add_argument("--no-timing-gates", action="store_true", help="judge quality and costs only")
        if parser is not bisect:
            parser.add_argument("--variant", action="append", help="only this variant (repeatable)")
        else:
            parser.add_argument("--variant", help="the variant to run (default: the suite's first)")
        parser.set_defaults(handler=functools.partial(_history_command, handler))


def _history_command(name: str, args) -> int:
    """Imported when called: the history commands pull in numpy and compare, which `xmbench list` need not."""
    from xmbench.history import commands

    return getattr(commands, name)(args)


def _baseline_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baselines", type=Path, default=Path("baselines"), help="baselines folder")
    parser.add_argument("--no-timing-gates", action="store_true",
                        help="gate on quality and deterministic costs only (for shared, noisy machines)")
    parser.add_argument("--machine-class", help="override the machine class derived from the hardware")


def _suite_records(suite, records_dir):
    from xmbench.bench.record import DEFAULT_RECORDS, read_records

    names = {v.name for v in suite.variants + suite.derived}
    records = [r for r in read_records(records_dir or DEFAULT_RECORDS, suite.name) if r.variant in names]
    if not records:
        raise XmbenchError(f"no records of suite '{suite.name}' under {records_dir or DEFAULT_RECORDS}; "
                           f"run `xmbench run {suite.path}` first")
    return records


def run_gate(suite, records, args) -> int:
    """Compare with the baseline, print the verdict (and append it to $GITHUB_STEP_SUMMARY)."""
    import os

    from xmbench.bench import baseline, gate
    from xmbench.bench.compare import compare, is_timing
    from xmbench.report.markdown import verdict_markdown

    base_records, header = baseline.load(suite.name, args.baselines, args.machine_class)
    deltas = compare(records, base_records)
    rules = [r for r in suite.gates if not (args.no_timing_gates and is_timing(r.metric))]
    verdict = gate.check(deltas, rules)
    text = verdict_markdown(verdict, deltas, suite.name, header)
    print(text)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a") as f:
            f.write(text + "\n")
    return 0 if verdict.passed else 1


def cmd_run(args) -> int:
    from xmbench.bench.preflight import check_suite
    from xmbench.bench.record import DEFAULT_RECORDS
    from xmbench.bench.runner import DEFAULT_ARTIFACTS, run_suite
    from xmbench.report.markdown import render_markdown
    from xmbench.suite import load_suite

    suite = load_suite(args.suite)
    for name in args.variant or []:
        suite.variant(name)  # unknown names fail before anything runs
    if not args.in_process and args.nproc == 1 and args.executor in ("local", "pool"):
        from xmbench.bench import isolated

        isolated.start_early()  # its imports overlap the preflight's
    problems = check_suite(suite, args.variant)  # data, batch sizes, models: before the first step
    if problems:
        return _refuse(problems)
    executor = _executor(args)
    try:
        records = run_suite(suite, args.records or DEFAULT_RECORDS, args.artifacts or DEFAULT_ARTIFACTS,
                            force=args.force, progress=not args.no_progress, only=args.variant,
                            isolate=not args.in_process, timeout_s=args.timeout, executor=executor)
    finally:
        if hasattr(executor, "close"):  # a Ray instance this run started
            executor.close()
    print(render_markdown(records))
    if args.history:
        from xmbench.bench.baseline import machine_class
        from xmbench.history.commands import file_records

        print("\n".join(file_records(suite, records, args.history, machine_class(args.machine_class))))
    if args.gate:
        return run_gate(suite, records, args)
    failed = [r for r in records if not r.ok]
    return 1 if failed else 0


def _executor(args):
    """The executor the flags ask for; None is the default (one isolated run at a time)."""
    if args.nproc < 1 or (args.workers is not None and args.workers < 1):
        raise ConfigError("--nproc and --workers take a positive number")
    if args.nproc > 1:
        if args.executor != "local" or args.in_process:
            raise ConfigError("--nproc launches each run with torchrun here; it does not combine with "
                              "--executor pool/ray or --in-process")
        from xmbench.bench.executors.ddp import DdpExecutor

        return DdpExecutor(args.nproc)
    if args.address and args.executor != "ray":
        raise ConfigError("--address needs --executor ray")
    if args.executor == "local":
        if args.workers:
            raise ConfigError("--workers needs --executor pool or ray")
        return None
    if args.in_process:
        raise ConfigError(f"--executor {args.executor} runs each job in its own process; --in-process needs the local one")
    if args.executor == "pool":
        from xmbench.bench.executors.pool import PoolExecutor, visible_gpus

        return PoolExecutor(args.workers or len(visible_gpus()) or 2)
    from xmbench.bench.executors.ray import RayExecutor

    return RayExecutor(args.address, args.workers)


def cmd_profile(args) -> int:
    """Each selected variant re-run once with every probe on; records go to suite '<name>-profile'."""
    from dataclasses import replace

    from xmbench.bench.record import DEFAULT_RECORDS
    from xmbench.bench.runner import DEFAULT_ARTIFACTS, run_suite
    from xmbench.profile.stage import trace_config
    from xmbench.profile.trace import writable_directory
    from xmbench.report.profile import render_profile
    from xmbench.suite import Suite, Variant, load_suite

    suite = load_suite(args.suite)
    chosen = [suite.variant(name) for name in args.variant] if args.variant else suite.variants
    derived = [v.name for v in chosen if v not in suite.variants]
    if derived:
        raise ConfigError(f"--variant {derived[0]}: a derived run is profiled by `xmbench run` (its profile section "
                          f"is its first input's); `xmbench profile` re-runs trained variants")
    variants = []
    for variant in chosen:
        config = trace_config(variant.config)
        if args.trace_dir:
            config = replace(config, profile=replace(config.profile, trace_dir=str(args.trace_dir)))
        writable_directory(Path(config.profile.trace_dir))  # fail before any work, naming the folder
        variants.append(Variant(variant.name, config, {**variant.overrides, "profile": "xmbench profile"}))
    profiled = Suite(f"{suite.name}-profile", suite.path, suite.description, [args.seed if args.seed is not None
                     else suite.seeds[0]], variants, [], suite.timeout_s)
    records = run_suite(profiled, args.records or DEFAULT_RECORDS, DEFAULT_ARTIFACTS, force=True,
                        progress=not args.no_progress, isolate=not args.in_process, timeout_s=args.timeout)
    print(render_profile(records))
    return 1 if any(not r.ok for r in records) else 0


def cmd_baseline_accept(args) -> int:
    from xmbench.bench import baseline
    from xmbench.suite import load_suite

    suite = load_suite(args.suite)
    records = _suite_records(suite, args.records)
    failed = [f"{r.variant} seed {r.seed}" for r in records if not r.ok]
    if failed and not args.force:
        raise XmbenchError(f"refusing a baseline with failed runs ({', '.join(failed)}); pass --force to accept")
    path = baseline.accept(records, suite.name, args.baselines, args.machine_class, force=args.force)
    print(f"baseline of suite '{suite.name}' ({len(records)} records) → {path}")
    return 0


def cmd_compare(args) -> int:
    from xmbench.bench import baseline
    from xmbench.bench.compare import compare
    from xmbench.bench.record import read_records
    from xmbench.report.markdown import comparison_table
    from xmbench.suite import load_suite

    suite = load_suite(args.suite)
    records = _suite_records(suite, args.records)
    if args.against:
        reference = read_records(args.against, suite.name)
        if not reference:
            raise XmbenchError(f"no records of suite '{suite.name}' under {args.against}")
    else:
        reference, _ = baseline.load(suite.name, args.baselines, args.machine_class)
    print(comparison_table(compare(records, reference), everything=args.all))
    return 0


def cmd_gate(args) -> int:
    from xmbench.suite import load_suite

    suite = load_suite(args.suite)
    return run_gate(suite, _suite_records(suite, args.records), args)


def cmd_validate(args) -> int:
    """Every file, every dataset, every model: all problems listed, exit 2 if there is one."""
    from xmbench.bench.preflight import check_files

    suites, problems = check_files(args.suites)
    if problems:
        return _refuse(problems)
    for suite in suites:
        derived = f" + {len(suite.derived)} derived" if suite.derived else ""
        searches = sum(len(t.points) * len(t.seeds) for t in suite.tuning)
        tuned = (f"; [tune]: {len(suite.tuning)} variants tuned on {suite.tuning[0].split}, {searches} search runs"
                 if suite.tuning else "")
        print(f"{suite.path}: ok — suite '{suite.name}', {len(suite.variants)} variants{derived} × {len(suite.seeds)} "
              f"seeds{tuned}")
    return 0


def _refuse(problems) -> int:
    for problem in problems:
        print(f"xmbench: error: {problem}", file=sys.stderr)
    print(f"xmbench: {len(problems)} problem{'s' * (len(problems) != 1)} found; nothing was run or written",
          file=sys.stderr)
    return 2


def cmd_list(args) -> int:
    """Every registered technique with its options; a plugin's entries end with `[plugin MODULE]`."""
    from xmbench.plugins import import_plugins
    from xmbench.registry import ALL_REGISTRIES, BUILTIN

    kinds = {r.kind: r for r in ALL_REGISTRIES} | {r.kind + "s": r for r in ALL_REGISTRIES}
    if args.kind and args.kind not in kinds:
        raise ConfigError(f"unknown kind '{args.kind}'{did_you_mean(args.kind, kinds)}; "
                          f"known: {', '.join(r.kind for r in ALL_REGISTRIES)}")
    import_plugins(args.plugin, "--plugin")
    for registry in [kinds[args.kind]] if args.kind else ALL_REGISTRIES:
        print(f"{registry.kind} ({registry.config_key}):")
        if not registry.entries():
            print("  (none registered yet)")
        for entry in registry.entries():
            origin = "" if entry.origin == BUILTIN else f"  [plugin {entry.origin}]"
            print(f"  {entry.name:<12} {entry.summary}{origin}")
            for name, type_name, default, doc in entry.option_rows():
                print(f"      {name}: {type_name} = {default!r}" + (f"  — {doc}" if doc else ""))
    return 0


def cmd_report(args) -> int:
    from xmbench.bench.record import DEFAULT_RECORDS, read_records
    from xmbench.report.frame import records_frame
    from xmbench.report.markdown import render_markdown

    directory = args.records or DEFAULT_RECORDS
    records = [r for suite in args.suite for r in read_records(directory, suite)] if args.suite else read_records(directory)
    if not records:
        raise XmbenchError(f"no records under {args.records or DEFAULT_RECORDS}; run `xmbench run SUITE` first")
    if args.roadmap and args.html:
        from xmbench.report.html import render_roadmap_html

        return _write_page(args.out or Path("reports") / "roadmap.html", render_roadmap_html(records))
    if args.roadmap:
        from xmbench.report.roadmap import render_roadmap

        text = render_roadmap(records)
    elif args.json or args.csv:
        frame = records_frame(records)
        text = frame.to_json(orient="records", indent=1) if args.json else frame.to_csv(index=False)
    elif args.html:
        from xmbench.report.html import render_html

        return _write_page(args.out or Path("reports") / "report.html", render_html(records, _regressions(records, args)))
    else:
        text = render_markdown(records)
        regressions = _regressions(records, args)
        if regressions:
            text += f"\n## Against the baseline\n\n{regressions}"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


def _write_page(out: Path, page: str) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    print(f"wrote {out}")
    return 0


def _regressions(records, args) -> str:
    """Comparison tables of each suite that has a baseline on this machine class; '' otherwise."""
    from xmbench.bench import baseline
    from xmbench.bench.compare import compare
    from xmbench.report.markdown import comparison_table

    parts = []
    for suite in dict.fromkeys(r.suite for r in records):
        try:
            reference, header = baseline.load(suite, args.baselines, args.machine_class)
        except XmbenchError as exc:
            parts.append(f"`{suite}`: {exc}\n")
            continue
        current = [r for r in records if r.suite == suite]
        parts.append(f"### {suite} (baseline commit `{str(header.get('commit'))[:12]}`)\n\n"
                     + comparison_table(compare(current, reference)))
    return "\n".join(parts)


def cmd_data_export(args) -> int:
    import tomllib

    from xmbench.config import resolve
    from xmbench.data.manifest import write_manifest
    from xmbench.data.sources import SPLITS, load_raw

    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("data."):
            raise ConfigError(f"--set {item!r}: expected data.KEY=VALUE")
        try:
            overrides[key] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            overrides[key] = value  # a bare word is a string
    config = resolve({}, overrides)
    manifest = write_manifest([load_raw(config.data, split) for split in SPLITS], args.out)
    print(f"wrote {manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
