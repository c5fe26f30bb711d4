"""The Markdown summary of a report document (for $GITHUB_STEP_SUMMARY or a PR comment): a renderer
of ``report.build_report``'s document, as ``html_report.py`` is."""
from __future__ import annotations

from .report import (COUNT_COLUMNS, FAILING, INVALID_CASE_FILE, OUTCOMES, geometric_mean, headline,
                     performance_groups, untimed_items)

MARKDOWN_FAILURES = 50  # listed in the Markdown summary (a GitHub step summary is capped at 1 MiB)



def _rate(cell: dict) -> str:
    return "n/a" if cell["pass_rate"] is None else f"{cell['pass_rate']:.1f}%"


def markdown(report: dict, html_name: str | None = None) -> str:
    """A short Markdown summary (for $GITHUB_STEP_SUMMARY or a PR comment)."""
    summary = report["summary"]
    lines = ["## OpenVINO op conformance", ""]
    env = report["environment"]
    lines.append(f"OpenVINO `{env.get('openvino_version')}`, targets: {', '.join(env.get('targets', []))}")
    totals = summary["totals"]
    lines += ["", f"**{totals['items']} items**: " + ", ".join(
        f"{totals[outcome]} {outcome}" for outcome in OUTCOMES if totals[outcome]) + f"; pass rate {_rate(totals)}"]
    unexpected = sum(totals[outcome] for outcome in FAILING)
    known = f"{totals['xfailed']} expected failures (known deviations, expected_failures.yaml)"
    lines += ["", f"**{unexpected} unexpected outcome(s)** ({', '.join(o for o in FAILING if totals[o])}); {known}"
              if unexpected else f"No unexpected outcomes; {known}"]
    lines += ["", "| op | target | " + " | ".join(COUNT_COLUMNS) + " | pass rate |",
              "|---|---|" + "---|" * len(COUNT_COLUMNS) + "---|"]
    for op, targets in summary["matrix"].items():
        for target, cell in targets.items():
            lines.append(f"| {op} | {target} | " + " | ".join(str(cell[c]) for c in COUNT_COLUMNS)
                         + f" | {_rate(cell)} |")
    if summary.get("kinds"):
        lines += ["", "| kind | " + " | ".join(OUTCOMES) + " |", "|---|" + "---|" * len(OUTCOMES)]
        for kind, counts in summary["kinds"].items():
            lines.append(f"| {kind} | " + " | ".join(str(counts.get(c, 0)) for c in OUTCOMES) + " |")
    failing = [item for item in report["items"] if item["outcome"] in FAILING]
    if failing:
        lines += ["", "### Failures", ""]
        for item in failing[:MARKDOWN_FAILURES]:
            if item["op"] == INVALID_CASE_FILE:
                lines += _invalid_case_file_markdown(item)
                continue
            first = headline(item)
            repro = f" (repro: `{item['repro']}`)" if item.get("repro") else ""
            lines.append(f"- `{item['case_id']}` [{item['target_id']}] **{item['outcome']}**: {first}{repro}")
        if len(failing) > MARKDOWN_FAILURES:
            lines.append(f"- ... and {len(failing) - MARKDOWN_FAILURES} more (all are in the JSON and HTML reports)")
    if summary["primitives"]:
        lines += ["", "Primitives exercised:", ""]
        for op, targets in summary["primitives"].items():
            for target, names in targets.items():
                lines.append(f"- {op} / {target}: {', '.join(names)}")
    lines += _cross_target_markdown(report.get("cross_target"))
    lines += _performance_markdown(report["items"])
    if html_name:
        lines += ["", f"Per-case details: `{html_name}` (in the run's artifacts)."]
    return "\n".join(lines) + "\n"


MARKDOWN_FILE_PROBLEMS = 5                   # problems listed per invalid case file


def _code(text: str) -> str:
    """``text`` as a Markdown code span, whatever backticks it holds."""
    fence = "``" if "`" in text else "`"
    return f"{fence} {text} {fence}" if fence == "``" else f"`{text}`"


def _invalid_case_file_markdown(item: dict) -> list[str]:
    """A file that did not load: where (file:line) and its problems, each ``file:line: field: problem``."""
    problems = [line for line in (item.get("reason") or "").splitlines()[1:] if line.strip()]
    lines = [f"- {_code(item['source'])} **{item['outcome']}**: invalid case file, {len(problems)} problem(s)"]
    lines += [f"  - {_code(problem)}" for problem in problems[:MARKDOWN_FILE_PROBLEMS]]
    if len(problems) > MARKDOWN_FILE_PROBLEMS:
        lines.append(f"  - ... and {len(problems) - MARKDOWN_FILE_PROBLEMS} more (all are in the JSON report)")
    return lines


MARKDOWN_PERF_ROWS = 300   # timed items listed (the rest are in the JSON and HTML reports)


def _figure(value) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _performance_markdown(items: list[dict]) -> list[str]:
    """pytest --perf: per primitive the geometric-mean ratio, then one row per timed item."""
    groups = performance_groups(items)
    untimed = untimed_items(items)
    if not groups and not untimed:
        return []
    lines = ["", "### Performance (pytest --perf)", "",
             "OpenVINO's median latency (single-case model) vs torch float32, same inputs and threads; "
             "ratio = OpenVINO / torch.", "", "| primitive | items | geometric mean ratio |", "|---|---|---|"]
    for primitive, rows in groups.items():
        mean = geometric_mean([row["perf"].get("ratio") for row in rows])
        lines.append(f"| {primitive} | {len(rows)} | {_figure(mean)} |")
    lines += ["", "| case | target | primitive | OpenVINO ms | spread | torch ms | ratio | GFLOP | GFLOP/s | threads |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    rows = [row for members in groups.values() for row in members]
    for row in rows[:MARKDOWN_PERF_ROWS]:
        timing = row["perf"]
        lines.append(f"| `{row['case_id']}` | {row['target_id']} | {row['primitive']} | " + " | ".join(
            _figure(timing.get(key)) for key in ("latency_ms", "spread", "torch_latency_ms", "ratio", "gflops",
                                                 "gflops_per_s", "threads")) + " |")
    if len(rows) > MARKDOWN_PERF_ROWS:
        lines.append(f"| ... and {len(rows) - MARKDOWN_PERF_ROWS} more (JSON and HTML reports) |||||||||| ")
    for item in untimed:
        why = item["perf"].get("error") or item["perf"].get("not_measured")
        lines.append(f"| `{item['case_id']}` | {item['target_id']} | not timed: {why} |||||||| ")
    return lines


def _diff_text(value: float | None) -> str:
    return "shape/NaN" if value is None else f"{value:.3g}"


def _cross_target_markdown(section: dict | None) -> list[str]:
    """Targets compared with each other (same case, same inputs): per pair, then the largest differences."""
    if not section or not section.get("pairs"):
        return []
    lines = ["", "### Cross-target differences", "",
             "| targets | cases | identical | differing | beyond tolerance | max abs diff |", "|---|---|---|---|---|---|"]
    for pair, counts in section["pairs"].items():
        lines.append(f"| {pair} | {counts['cases']} | {counts['identical']} | {counts['differing']} | "
                     f"{counts['beyond_tolerance']} | {_diff_text(counts['max_abs_diff'])} |")
    if section.get("largest"):
        lines += ["", "| case | targets | max abs diff | beyond tolerance | primitives |", "|---|---|---|---|---|"]
        for entry in section["largest"]:
            lines.append(f"| `{entry['case_id']}` | {entry['a']} vs {entry['b']} | {_diff_text(entry['max_abs_diff'])} | "
                         f"{entry['beyond']}/{entry['total']} | {entry['primitive_a']} / {entry['primitive_b']} |")
    return lines
