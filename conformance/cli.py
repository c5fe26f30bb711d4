"""``ov-conformance``: validate, list, render, scaffold and run case files.

Thin by design: every command calls the functions of ``conformance.api`` that the
pytest plugin calls; ``run`` checks items through ``api.RunSession`` as the plugin
does (the same policy, bundles and records), without pytest.

    ov-conformance validate cases/                 # every problem, file:line: field: ...
    ov-conformance run cases/spec_notes --target CPU:f32 --report reports/cli.json   # check, as pytest does
    ov-conformance list cases/group_convolution    # expanded case ids
    ov-conformance render 'group_convolution/depthwise.yaml::mobilenet_v2_dw3x3' -o out/
    ov-conformance new GroupConvolutionBackpropData --style pytorch -o cases/mine.yaml
    ov-conformance merge-reports shard-1.json shard-2.json -o reports/conformance.json
    ov-conformance compare-bundles A B             # two `pytest --save-results` bundles; exit 1 if they differ
    ov-conformance bisect 'spec_notes/backprop_output_shape.yaml::valid_total_2' --releases 2023.3.0..2026.4.1
    ov-conformance releases --releases 2024.6.0,2025.4.1,2026.4.1 -k groups -o reports/releases
    ov-conformance envs [prune [RELEASE ...]]      # cached release environments (conformance.releases)
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import ops, styles
# Only case.py at import time: validate/list/new start in a fraction of a second
# (the api pulls in torch and OpenVINO; render imports it when it runs).
from .case import DEFAULT_MEMORY_BUDGET, Case, CaseError, load_paths, parse_size, select

DEFAULT_CASES = Path("cases")


def _budget(text: str) -> int | None:
    if text.lower() == "none":
        return None
    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_budget(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--memory-budget", type=_budget, default=DEFAULT_MEMORY_BUDGET, metavar="SIZE",
                        help="refuse cases whose tensors need more than SIZE (e.g. 16GiB, 512MiB, none; "
                             "default 16GiB, as the pytest plugin)")


def _validate(args, memory_budget: int | None | str = "args") -> tuple[list[Case], list[CaseError]]:
    """``api.validate`` per path; ids are relative to --root, or to ./cases for paths inside it
    (as in pytest ids), else to the directory given. ``memory_budget``: default --memory-budget."""
    memory_budget = args.memory_budget if memory_budget == "args" else memory_budget
    cases, errors = [], []
    default_root = DEFAULT_CASES.resolve()
    for path in args.paths:
        root = Path(args.root) if args.root else None
        if root is None and default_root.is_dir() and (
                default_root == Path(path).resolve() or default_root in Path(path).absolute().parents):
            root = DEFAULT_CASES
        found, problems = load_paths([path], root, memory_budget=memory_budget)
        cases += found
        errors += problems
    return cases, errors


# --- validate / list ------------------------------------------------------------------

def cmd_validate(args) -> int:
    """Check every case file; print every problem; exit 1 if there is any."""
    cases, errors = _validate(args)
    for error in errors:
        print(error)
    files = len({case.source.path for case in cases})
    if errors:
        bad = len({error.path for error in errors})
        print(f"{len(errors)} problem(s) in {bad} file(s); {len(cases)} case(s) in {files} other file(s) are valid",
              file=sys.stderr)
        return 1
    print(f"ok: {len(cases)} case(s) in {files} file(s)", file=sys.stderr)
    return 0


def cmd_list(args) -> int:
    """Print the expanded case ids (one per sweep combination)."""
    cases, errors = _validate(args)
    for case in cases:
        print(f"{case.id}\t{case.source}" if args.verbose else case.id)
    for error in errors:
        print(error, file=sys.stderr)
    return 1 if errors else 0


# --- run -------------------------------------------------------------------------------

def cmd_run(args) -> int:
    """Check the cases on the targets through ``api.RunSession`` (the pytest plugin's path): one line
    per item, each failing item's message, the report with --report; exit 1 when an item fails as
    pytest would count it (report.FAILING or a file that does not load), 2 on bad options."""
    import time
    from collections import Counter

    from . import api, bundles, expectations
    from . import report as reporting
    from .report_writer import write_report
    from .releases import openvino_release
    from .targets import TargetError, parse_target, unique
    try:
        targets = unique([parse_target(text) for text in args.target or ["CPU:f32"]])
        registry = (expectations.load_registry(args.expected_failures)
                    if Path(args.expected_failures).is_file() else [])
    except (TargetError, CaseError) as error:
        print(error, file=sys.stderr)
        return 2
    # As the plugin: files load under max(budget, default) (a typo'd dimension), items over the budget skip.
    load_budget = None if args.memory_budget is None else max(args.memory_budget, DEFAULT_MEMORY_BUDGET)
    cases, errors = _validate(args, load_budget)
    for error in errors:
        print(error)
    report_path = Path(args.report) if args.report else None
    session = api.RunSession(args.ir_dir, not args.no_isolate, args.item_timeout or api.DEFAULT_TIMEOUT,
                             repro_dir=args.repro_dir,
                             results_dir=args.save_results, root=Path.cwd(),
                             report_dir=report_path.parent if report_path else Path.cwd())
    if args.save_results:
        bundles.start_bundle(args.save_results, {"openvino_version": api.openvino_version(),
                                                 "targets": [target.id for target in targets]}, clear=True)
    release = openvino_release()
    records, counts = [], Counter()
    for case in cases:
        source = f"{api.relative_path(case.source.path, Path.cwd())}:{case.source.line}"
        file_id = source.rsplit(":", 1)[0]
        for target in api.targets_for(targets, case):
            policy = api.item_policy(case, target, registry, release, run_slow=args.runslow,
                                     memory_budget=args.memory_budget)
            started = time.perf_counter()
            result = None if policy.skip else session.run_item(
                case, target, registered_failure=policy.registered_failure)
            outcome, reason = api.item_ending(result, policy)
            counts[outcome] += 1
            print(f"{outcome.upper()} {case.id} [{target.id}]")
            if outcome in reporting.FAILING:
                print("  " + reason.replace("\n", "\n  "))
            suffix = case.id.split("::", 1)[1][len(case.name):]
            record = reporting.ItemRecord(
                nodeid=f"{file_id}::{case.name}{suffix}[{target.id}]", case_id=case.id, target_id=target.id,
                op=case.op, source=source, outcome=outcome, reason=reason,
                duration_seconds=round(time.perf_counter() - started, 6), kinds=api.item_kinds(case, target),
                per_group=result.per_group.record() if result and result.per_group else None)
            if result is not None and result.record is not None:
                record.run, record.verdict, record.repro = (result.record["run"], result.record["verdict"],
                                                            result.record["repro"])
            records.append(record)
    by_file: dict[str, list[CaseError]] = {}
    for error in errors:   # a file that does not load is one failed row, as under pytest
        by_file.setdefault(api.relative_path(error.path, Path.cwd(), resolve=False), []).append(error)
    for path, problems in by_file.items():
        counts["failed"] += 1
        records.append(reporting.ItemRecord(
            nodeid=f"{path}::invalid-case-file", case_id=path, target_id="-", op=reporting.INVALID_CASE_FILE,
            source=f"{path}:{problems[0].line or 1}", outcome="failed",
            reason="invalid case file\n" + "\n".join(map(str, problems))))
    if report_path is not None:
        document = reporting.build_report(records, api.report_environment(records, targets))
        written = write_report(document, report_path)
        print(f"report: {', '.join(map(str, written))}", file=sys.stderr)
    print(", ".join(f"{counts[name]} {name}" for name in (*reporting.OUTCOMES,) if counts[name]) or "no items",
          file=sys.stderr)
    return 1 if errors or any(counts[name] for name in reporting.FAILING) else 0


# --- render ----------------------------------------------------------------------------

def cmd_render(args) -> int:
    """Write IR + input + expected output for the selected cases, print benchmark_app lines."""
    try:
        cases = select(args.case, Path(args.cases), args.memory_budget)
    except CaseError as error:
        print(error, file=sys.stderr)
        return 1
    from . import api
    for case in cases:
        exported = api.export(case, args.output)
        print(f"# {case.id}  ({case.source})")
        print(f"#   IR {exported.xml_path} + {exported.bin_path.name}; input {exported.data_path.name}; "
              f"expected (float64) {exported.expected_path.name}")
        print(exported.benchmark_app_command(args.device, args.precision))
    return 0


# --- new -------------------------------------------------------------------------------

SCAFFOLDS = {(style, name): text for name in ops.names() for style, text in ops.get(name).scaffolds.items()}


def cmd_new(args) -> int:
    """Print (or write) a commented case file to start from."""
    key = (args.style, args.op)
    if key not in SCAFFOLDS:
        print(f"{args.style} style has no {args.op} (MATLAB's groupedConvolution2dLayer is GroupConvolution)",
              file=sys.stderr)
        return 1
    text = SCAFFOLDS[key].format(path=args.output or "FILE.yaml")
    if args.output is None:
        sys.stdout.write(text)
        return 0
    output = Path(args.output)
    if output.exists():
        print(f"{output} exists; not overwriting it", file=sys.stderr)
        return 1
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output}; edit it, then: ov-conformance validate {output}", file=sys.stderr)
    return 0


def cmd_merge_reports(args) -> int:
    """Merge shard reports into one JSON report, with its Markdown and HTML beside it."""
    from . import report, report_writer
    try:
        json_path, markdown_path, html_path = report_writer.merge_files(args.reports, args.output)
    except (OSError, ValueError, KeyError) as error:  # missing file, bad JSON, overlapping shards
        print(f"merge-reports: {error}", file=sys.stderr)
        return 1
    totals = report.read_report(json_path)["summary"]["totals"]
    counts = ", ".join(f"{totals[name]} {name}" for name in report.OUTCOMES if totals[name])
    print(f"{len(args.reports)} reports, {totals['items']} items ({counts}): {json_path}, {markdown_path}, {html_path}")
    return 0


# --- the parser ------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ov-conformance",
        description="Case files for the OpenVINO GroupConvolution / GroupConvolutionBackpropData "
                    "conformance harness. Run the cases with: python -m pytest",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  ov-conformance validate cases/\n"
               "  ov-conformance list cases/group_convolution/depthwise.yaml\n"
               "  ov-conformance render 'group_convolution/depthwise.yaml::mobilenet_v2_dw3x3' -o out/\n"
               "  ov-conformance new GroupConvolution --style pytorch -o cases/mine.yaml\n"
               "  ov-conformance compare-bundles results/ov-2026.4.1 results/ov-2026.3.0")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="check case files; print every problem (exit 1 if any)",
                                   description="Check case files and directories without running anything. "
                                               "Prints every problem as file:line: field: message.")
    validate.add_argument("paths", nargs="+", metavar="PATH", help="case files or directories (searched for *.yaml)")
    validate.add_argument("--root", help="cases root: files resolving outside it are refused "
                                         "(default: each directory given)")
    _add_budget(validate)
    validate.set_defaults(handler=cmd_validate)

    listing = commands.add_parser("list", help="print the expanded case ids",
                                  description="Print one case id per sweep combination, as pytest ids show them.")
    listing.add_argument("paths", nargs="+", metavar="PATH", help="case files or directories")
    listing.add_argument("--root", help="cases root (default: each directory given)")
    listing.add_argument("-v", "--verbose", action="store_true", help="also print file:line of each case")
    _add_budget(listing)
    listing.set_defaults(handler=cmd_list)

    run = commands.add_parser(
        "run", help="check cases on targets (as pytest does, without it); exit 1 if an item fails",
        description="Check every case under PATH on each target through the harness's run session (the pytest "
                    "plugin's path: the same skip/xfail policy, repro and result bundles and report records). "
                    "Prints one line per item (PASSED, FAILED, XFAILED, ...) and each failing item's message.")
    run.add_argument("paths", nargs="+", metavar="PATH", help="case files or directories")
    run.add_argument("--root", help="cases root: case ids are relative to it (default: ./cases for paths inside it, "
                                    "else each directory given)")
    run.add_argument("--target", action="append", metavar="DEVICE[:PRECISION][:ISA]",
                     help="target as in pytest --target (repeatable; default CPU:f32)")
    run.add_argument("--expected-failures", default="expected_failures.yaml", metavar="PATH",
                     help="expected-failure registry (default: expected_failures.yaml, if present)")
    run.add_argument("--report", metavar="PATH.json", help="write the JSON report here (.md and .html beside it)")
    run.add_argument("--repro-dir", default="reports/repro", metavar="DIR",
                     help="where repro bundles of failing items go (default reports/repro)")
    run.add_argument("--save-results", metavar="DIR", help="write every item's output to this result bundle")
    run.add_argument("--ir-dir", default=".conformance/ir", metavar="DIR", help="where rendered IR goes")
    run.add_argument("--no-isolate", action="store_true",
                     help="run OpenVINO in this process (default: in worker processes, as pytest)")
    run.add_argument("--item-timeout", type=float, default=None, metavar="SECONDS",
                     help="isolated items running longer are 'hung' (default as pytest)")
    run.add_argument("--runslow", action="store_true", help="also run cases marked slow")
    _add_budget(run)
    run.set_defaults(handler=cmd_run)

    render = commands.add_parser(
        "render", help="write IR .xml/.bin, input .npy and expected .npy for benchmark_app",
        description="Render cases to OpenVINO IR (the bytes the harness runs), with the input and the "
                    "spec's expected output as .npy, and print a benchmark_app line for each.")
    render.add_argument("case", metavar="CASE_ID_OR_FILE",
                        help="a case file, or a case id FILE::NAME[SWEEP] (FILE relative to --cases; "
                             "without [SWEEP]: every combination)")
    render.add_argument("-o", "--output", required=True, metavar="DIR", help="directory to write to")
    render.add_argument("--cases", default=str(DEFAULT_CASES), metavar="DIR",
                        help="cases root that case ids are relative to (default: cases)")
    render.add_argument("--device", default="CPU", help="device for the printed benchmark_app line")
    render.add_argument("--precision", default="f32", help="inference precision for the benchmark_app line")
    _add_budget(render)
    render.set_defaults(handler=cmd_render)

    new = commands.add_parser("new", help="print a commented case file to start from",
                              description="Scaffold a commented case file for OP in one of the styles.")
    new.add_argument("op", choices=ops.names(), metavar="OP", help=", ".join(ops.names()))
    new.add_argument("--style", choices=styles.STYLES, default="spec",
                     help="spec (default), pytorch (nn.ConvNd / ConvTransposeNd) or matlab (groupedConvolution2dLayer)")
    new.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout (never overwrites)")
    new.set_defaults(handler=cmd_new)

    merge = commands.add_parser(
        "merge-reports", help="merge shard reports (JSON) into one, and write its Markdown and HTML",
        description="Merge the JSON reports of shards (pytest --splits N --group I --conformance-report ...) "
                    "into the report a single run would have written; repro links are rebased.")
    merge.add_argument("reports", nargs="+", metavar="REPORT.json", help="shard reports")
    merge.add_argument("-o", "--output", required=True, metavar="MERGED.json",
                       help="merged JSON report; .md and .html are written beside it")
    merge.set_defaults(handler=cmd_merge_reports)

    compare = commands.add_parser(
        "compare-bundles", help="compare two result bundles (pytest --save-results); exit 1 if any case differs",
        description="Compare the outputs of two result bundles (two machines, two OpenVINO versions, a plugin "
                    "and CPU). Items match by case id and target. A case differs beyond tolerance when "
                    "|a-b| > bound_a + bound_b, each side's tolerance against the oracle.")
    compare.add_argument("bundle_a", metavar="A", help="result bundle directory")
    compare.add_argument("bundle_b", metavar="B", help="result bundle directory")
    compare.add_argument("--exact", action="store_true", help="any difference counts (e.g. same machine, new release)")
    compare.add_argument("--target-a", metavar="ID", help="compare this target of A (e.g. GPU-f16) ...")
    compare.add_argument("--target-b", metavar="ID", help="... with this target of B (e.g. CPU-f32)")
    compare.add_argument("--all", action="store_true", help="list every differing case, not only those beyond tolerance")
    compare.add_argument("--perf-threshold", type=float, metavar="FACTOR", default=None,
                         help="items timed with pytest --perf in both: flag OpenVINO slowdowns beyond FACTOR "
                              "(default 1.5; noise rule in conformance/perf.py)")
    compare.add_argument("--perf-min-ms", type=float, metavar="MS", default=None,
                         help="latencies below MS on both sides are call overhead, never a regression (default 0.1)")
    compare.set_defaults(handler=cmd_compare_bundles)

    # --- other OpenVINO releases (conformance.releases) ---
    bisect = commands.add_parser(
        "bisect", help="find the first bad and last good OpenVINO release of a failing case",
        description="Run a case on OpenVINO releases (one cached environment per release, made on demand) and "
                    "bisect: the newest release's failure is 'bad'; a release failing differently is 'differs'; "
                    "at most ceil(log2(n))+2 releases run. The oracle and comparison stay in this process.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="then: an expected_failures.yaml entry covering the release range from the first bad release;\n"
               "a release that fixes it makes the item XPASS, which tells you to narrow the entry.")
    bisect.add_argument("case", nargs="*", metavar="CASE_ID_OR_FILE",
                        help="case id FILE::NAME[SWEEP] or file (relative to --cases); none: every case, with -k")
    _add_release_options(bisect)
    bisect.add_argument("--json", action="store_true",
                        help='print {"case", "first_bad", "last_good", "outcomes", ...} (a list for several cases)')
    bisect.set_defaults(handler=cmd_bisect)

    matrix = commands.add_parser(
        "releases", help="run cases on several OpenVINO releases: a case x release status matrix",
        description="Run the selected cases (default: all but slow ones) on each release and write a report "
                    "(JSON, Markdown, HTML) with a row per case and a column per release; cells that changed "
                    "from the previous release are highlighted. Exit 1 when any cell changed.")
    matrix.add_argument("case", nargs="*", metavar="CASE_ID_OR_FILE", help="case ids or files (default: all)")
    _add_release_options(matrix)
    matrix.add_argument("-o", "--output", default="reports/releases", metavar="STEM",
                        help="report path without suffix: STEM.json, STEM.md, STEM.html (default reports/releases)")
    matrix.set_defaults(handler=cmd_releases)

    envs = commands.add_parser("envs", help="list (or prune) the cached OpenVINO release environments",
                               description="List the release environments (release, OpenVINO, numpy, size, "
                                           "install time); 'prune' removes them (all, or the releases named).")
    envs.add_argument("action", nargs="?", choices=("list", "prune"), default="list")
    envs.add_argument("releases", nargs="*", metavar="RELEASE", help="for prune: only these releases")
    envs.add_argument("--cache-dir", metavar="DIR", help="cache root (default $OV_CONFORMANCE_CACHE or "
                                                         "~/.cache/ov-conformance)")
    envs.set_defaults(handler=cmd_envs)

    registry = commands.add_parser(
        "registry", help="hold expected_failures.yaml against a release matrix: check it, suggest ranges",
        description="check: every cell of a matrix written by 'ov-conformance releases' against what the registry "
                    "expects there (exit 1 on any disagreement); suggest: for every entry, the PEP 440 release "
                    "ranges its cases were measured to fail in, its way. The matrix's target (ISA cap) and this "
                    "machine's CPU features are matched as the pytest plugin matches items.")
    registry.add_argument("action", choices=("check", "suggest"))
    registry.add_argument("matrix", metavar="MATRIX.json", help="the JSON of 'ov-conformance releases -o STEM'")
    registry.add_argument("--expected-failures", default="expected_failures.yaml", metavar="PATH",
                          help="the registry (default expected_failures.yaml)")
    registry.set_defaults(handler=cmd_registry)

    upstream = commands.add_parser(
        "report", help="write an upstream bug report for a failing case (issue body, IR, inputs, benchdnn line)",
        description="Run one case on the target (in a worker) and under the AVX2/SSE41 ISA caps, and write into "
                    "-o DIR: issue.md (spec vs CPU with the smallest differing elements, OpenVINO version, CPU "
                    "model and ISA features, primitive, other caps, reproduce commands, the case), bundle/ (the "
                    "repro bundle: IR, inputs, expected output, reproduce.py), onednn_verbose.txt and benchdnn.txt. "
                    "With --releases, the case is bisected first and the report names the first bad release.")
    upstream.add_argument("case", nargs=1, metavar="CASE_ID", help="case id FILE::NAME[SWEEP] (relative to --cases)")
    upstream.add_argument("-o", "--output", required=True, metavar="DIR", help="where the report is written")
    _add_release_options(upstream)
    upstream.set_defaults(handler=cmd_report)

    from .fuzzing.cli import add_parser as add_fuzz_parser   # the fuzzer's options live beside it
    add_fuzz_parser(commands)
    return parser


def _add_release_options(parser: argparse.ArgumentParser) -> None:
    """The options bisect and releases share: releases, selection, target, cache, timeouts."""
    parser.add_argument("--releases", metavar="A..B|A,B,C",
                        help="A..B: pip's releases from A to B; A,B,C: exactly these; default: every release pip lists")
    parser.add_argument("-k", dest="keyword", metavar="EXPRESSION",
                        help="select cases as pytest -k does (names of the item name[sweep][target], file, directories)")
    parser.add_argument("--target", default="CPU:f32", help="target string as in pytest --target (default CPU:f32)")
    parser.add_argument("--cases", default=str(DEFAULT_CASES), metavar="DIR", help="cases root (default: cases)")
    parser.add_argument("--cache-dir", metavar="DIR",
                        help="cache root for release environments (default $OV_CONFORMANCE_CACHE or ~/.cache/ov-conformance)")
    parser.add_argument("--ir-dir", default=".conformance/ir", metavar="DIR", help="where rendered IR goes")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per run before a worker counts as hung")
    parser.add_argument("--retry-install", action="store_true",
                        help="try again to install releases remembered as not installable")
    parser.add_argument("--refresh", action="store_true", help="ask pip for the release list even if cached")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")


def cmd_compare_bundles(args) -> int:
    """Print the cases that differ between two result bundles and the performance regressions;
    1 if any beyond tolerance or slower beyond the threshold, 2 if unusable."""
    from .bundles import compare_bundles_command
    return compare_bundles_command(args.bundle_a, args.bundle_b, exact=args.exact, target_a=args.target_a,
                                   target_b=args.target_b, show_all=args.all, perf_threshold=args.perf_threshold,
                                   perf_min_ms=args.perf_min_ms)


def _release_run(args):
    """(runner, cases, releases) for bisect/releases, or an exit code after printing why not."""
    from . import releases
    from .targets import TargetError, parse_target
    try:
        target = parse_target(args.target)
    except TargetError as error:
        print(f"--target: {error}", file=sys.stderr)
        return 2
    root = releases.cache_root(args.cache_dir)
    try:
        chosen = releases.select_releases(args.releases, lambda: releases.available_releases(root, args.refresh))
    except (ValueError, RuntimeError, OSError) as error:
        print(f"--releases: {error}", file=sys.stderr)
        return 2
    try:
        cases = releases.select_cases(args.case, args.keyword, Path(args.cases), target.id)
    except CaseError as error:
        print(error, file=sys.stderr)
        return 1
    if not cases:
        print("no case selected", file=sys.stderr)
        return 1
    log = (lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    runner = releases.ReleaseRunner(releases.EnvironmentCache(root), target, Path(args.ir_dir), args.timeout,
                                    args.retry_install, log)
    log(f"{len(cases)} case(s) on {target.id}; releases {', '.join(chosen)}; environments in {root / 'envs'}")
    return runner, cases, chosen


def cmd_bisect(args) -> int:
    """Bisect each selected case over the releases; 0 when done (whatever was found), 2 on bad input."""
    import json
    prepared = _release_run(args)
    if isinstance(prepared, int):
        return prepared
    runner, cases, chosen = prepared
    results = [runner.bisect(case, chosen) for case in cases]
    if args.json:
        data = [result.to_json() for result in results]
        print(json.dumps(data[0] if len(data) == 1 else data, indent=1))
    else:
        print("\n\n".join(result.describe() for result in results))
    return 0


def cmd_releases(args) -> int:
    """Run the selected cases on every release; write the matrix report; 1 if any cell changed."""
    from . import releases
    prepared = _release_run(args)
    if isinstance(prepared, int):
        return prepared
    runner, cases, chosen = prepared
    matrix = releases.run_matrix(runner, cases, chosen)
    paths = matrix.write(args.output)
    changes = matrix.changes()
    totals = matrix.totals()
    for release in chosen:
        print(f"{release:<10} " + ", ".join(f"{count} {status}" for status, count in sorted(totals[release].items())))
    print(f"{len(cases)} cases x {len(chosen)} releases in {matrix.seconds:.0f} s; {len(changes)} cell(s) changed "
          f"between neighbouring releases; cache {releases.format_bytes(matrix.cache_bytes)}")
    print("report: " + ", ".join(str(path) for path in paths))
    return 1 if changes else 0


def cmd_envs(args) -> int:
    """List the cached release environments, or prune them."""
    from . import releases
    cache = releases.EnvironmentCache(releases.cache_root(args.cache_dir))
    if args.action == "prune":
        removed = cache.prune(args.releases or None)
        print(f"removed {len(removed)} entr{'y' if len(removed) == 1 else 'ies'} from {cache.envs}")
        return 0
    if args.releases:
        print("envs list takes no release names (did you mean: envs prune RELEASE ...?)", file=sys.stderr)
        return 2
    environments = cache.list()
    total = 0
    for environment in environments:
        size = environment.size_bytes()
        total += size
        print(f"{environment.release:<10} {releases.format_bytes(size):>10}  numpy {environment.numpy_version:<8} "
              f"made in {environment.install_seconds:5.1f} s  {environment.path}")
    for release in cache.failed():
        print(f"{release:<10} {'-':>10}  not installable ({cache.failure_path(release).name})")
    print(f"{len(environments)} environment(s), {releases.format_bytes(total)} in {cache.envs}")
    return 0


def cmd_registry(args) -> int:
    """Check the registry against a release matrix (1 on disagreement), or suggest each entry's range."""
    from . import expectations, registry_ranges
    try:
        entries = expectations.load_registry(args.expected_failures)
        matrix = registry_ranges.load_matrix(args.matrix)
    except (CaseError, ValueError, OSError) as error:
        print(error, file=sys.stderr)
        return 2
    features = registry_ranges.matrix_features(matrix)
    if args.action == "suggest":
        for suggestion in registry_ranges.suggest(entries, matrix, features):
            print(suggestion.describe())
        return 0
    disagreements = registry_ranges.check(entries, matrix, features)
    for disagreement in disagreements:
        print(disagreement.describe())
    cells = sum(len(cells) for cells in matrix["cells"].values())
    print(f"{len(disagreements)} disagreement(s) over {cells} cells ({len(matrix['cells'])} cases x "
          f"{len(matrix['releases'])} releases on {matrix['target']})")
    return 1 if disagreements else 0


def cmd_report(args) -> int:
    """Write the upstream report of one case; 0 when written (the case failed), 1 when it passes, 2 on bad input."""
    from . import releases, upstream
    from .targets import TargetError, parse_target
    try:
        target = parse_target(args.target)
        cases = releases.select_cases(args.case, None, Path(args.cases), target.id)
    except (TargetError, CaseError) as error:
        print(error, file=sys.stderr)
        return 2
    if len(cases) != 1:
        print(f"{args.case[0]}: expected one case, found {len(cases)}", file=sys.stderr)
        return 2
    bisection = None
    if args.releases:
        prepared = _release_run(args)
        if isinstance(prepared, int):
            return prepared
        runner, _, chosen = prepared
        bisection = runner.bisect(cases[0], chosen).to_json()
    report, issue = upstream.write_report(cases[0], target, args.output, ir_dir=args.ir_dir, bisection=bisection,
                                          timeout=args.timeout)
    if not report.main.failed:
        print(f"{cases[0].id} passes on {target.id}: nothing to report (the bundle is in {args.output} all the same)")
        return 1
    print(f"{cases[0].id} on {target.id}: {report.main.status}; issue body: {issue}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except BrokenPipeError:  # `ov-conformance list cases | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
