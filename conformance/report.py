"""Stage 6: per-item records -> JSON and Markdown summaries.

An ``ItemRecord`` is a plain, JSON-friendly summary of one test item (what
ran, how it compared, how it ended). The plugin builds them from pytest's
reports on the controlling process, so they are complete under xdist too.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

OUTCOMES = ("passed", "failed", "xfailed", "xpassed", "skipped", "error")


@dataclass
class ItemRecord:
    """One test item's result, as written into the JSON report."""

    nodeid: str
    case_id: str
    target_id: str
    op: str
    source: str
    outcome: str = "passed"
    duration_seconds: float = 0.0
    reason: str | None = None
    run: dict = field(default_factory=dict)       # device, precision, primitive, OpenVINO version
    verdict: dict = field(default_factory=dict)   # shape, mismatches, max errors, tolerance


def summarize(records: list[ItemRecord]) -> dict:
    """Counts per op x target and overall, in a deterministic order."""
    matrix: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    totals: Counter = Counter()
    primitives: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for record in records:
        matrix[record.op][record.target_id][record.outcome] += 1
        totals[record.outcome] += 1
        if record.run.get("primitive_type"):
            primitives[record.op][record.target_id].add(record.run["primitive_type"])
    return {
        "totals": {outcome: totals.get(outcome, 0) for outcome in OUTCOMES} | {"items": len(records)},
        "matrix": {
            op: {target: {outcome: counts.get(outcome, 0) for outcome in OUTCOMES}
                 for target, counts in sorted(targets.items())}
            for op, targets in sorted(matrix.items())},
        "primitives": {op: {target: sorted(names) for target, names in sorted(targets.items())}
                       for op, targets in sorted(primitives.items())},
    }


def build_report(records: list[ItemRecord], environment: dict) -> dict:
    """The whole JSON document: environment, summary, and one row per item."""
    ordered = sorted(records, key=lambda record: (record.case_id, record.target_id, record.nodeid))
    return {
        "schema": "openvino-op-conformance/1",
        "environment": environment,
        "summary": summarize(ordered),
        "items": [asdict(record) for record in ordered],
    }


def markdown(report: dict) -> str:
    """A short Markdown summary (for $GITHUB_STEP_SUMMARY or a PR comment)."""
    summary = report["summary"]
    lines = ["## OpenVINO op conformance", ""]
    env = report["environment"]
    lines.append(f"OpenVINO `{env.get('openvino_version')}`, targets: {', '.join(env.get('targets', []))}")
    lines += ["", "| op | target | passed | failed | xfailed | xpassed | skipped | error | pass rate |",
              "|---|---|---|---|---|---|---|---|---|"]
    for op, targets in summary["matrix"].items():
        for target, counts in targets.items():
            ran = counts["passed"] + counts["failed"] + counts["xfailed"] + counts["xpassed"] + counts["error"]
            rate = f"{100.0 * counts['passed'] / ran:.1f}%" if ran else "n/a"
            lines.append(f"| {op} | {target} | " + " | ".join(
                str(counts[o]) for o in ("passed", "failed", "xfailed", "xpassed", "skipped", "error")) + f" | {rate} |")
    failing = [item for item in report["items"] if item["outcome"] in ("failed", "error", "xpassed")]
    if failing:
        lines += ["", "### Failures", ""]
        for item in failing:
            first = (item.get("reason") or "").splitlines()[0] if item.get("reason") else ""
            lines.append(f"- `{item['case_id']}` [{item['target_id']}] {item['outcome']}: {first}")
    lines += ["", "Primitives exercised:", ""]
    for op, targets in summary["primitives"].items():
        for target, names in targets.items():
            lines.append(f"- {op} / {target}: {', '.join(names)}")
    return "\n".join(lines) + "\n"


def write_report(report: dict, json_path: Path | str) -> tuple[Path, Path]:
    """Write ``report`` as JSON and its Markdown summary beside it (``.md``)."""
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    markdown_path = json_path.with_suffix(".md")
    markdown_path.write_text(markdown(report), encoding="utf-8")
    return json_path, markdown_path
