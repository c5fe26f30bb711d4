"""Stage 6: the report model: per-item records -> one JSON-friendly report document.

This module owns the record format; the Markdown (``markdown_report.py``) and HTML
(``html_report.py``) summaries are renderers of the document it builds, and
``report_writer.py`` writes the three files (and merges shards). No renderer is
imported here. An ``ItemRecord`` is a plain, JSON-friendly summary of one test item (what
ran, how it compared, how it ended). The plugin builds them from pytest's
reports on the controlling process, so they are complete under xdist too.

The JSON document is deterministic: keys in a fixed order, items sorted by
(case id, target id, node id), paths relative to the report or the rootdir.
Only the fields named in ``TIMING_FIELDS`` change between two runs with the
same cases, seeds and targets; ``without_timing`` drops them for comparison.
Reports from several shards merge with ``merge_reports`` (the CLI's
``merge-reports``) into the document a single run would have written.
"""
from __future__ import annotations

import json
import math
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field, fields
from pathlib import Path

SCHEMA = "openvino-op-conformance/2"

# How an item ended. crashed/hung come from isolated runs (the worker died or overran its time limit).
OUTCOMES = ("passed", "failed", "xfailed", "xpassed", "skipped", "crashed", "hung", "error")
# Outcomes that fail a CI run (xfailed is an expected failure, skipped did not run).
FAILING = ("failed", "xpassed", "crashed", "hung", "error")

# (section, key) pairs that hold wall-clock measurements: the only fields that
# may differ between two runs of the same cases on the same targets.
TIMING_FIELDS = (("item", "duration_seconds"), ("run", "read_seconds"), ("run", "compile_seconds"),
                 ("run", "infer_seconds"),
                 ("run", "oracle_seconds"), ("run", "compare_seconds"), ("item", "perf"))


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
    repro: str | None = None                      # repro bundle directory, relative to the report
    kinds: list = field(default_factory=list)     # e.g. precision=bf16, element_type=f16, dynamic
    # A failing grouped item re-run as its ungrouped sibling op per group (api.GroupCheck.record):
    # {sibling, groups, passed, mismatches/total or error or note}; None when not run.
    per_group: dict | None = None
    # pytest --perf, a passed item: OpenVINO's and torch's latencies, GFLOP/s (perf.measure); None otherwise.
    perf: dict | None = None


_RECORD_FIELDS = tuple(item.name for item in fields(ItemRecord))


def outcome_fields(outcome, target, cpu_features, *, repro: str | None, ir: str, oracle_seconds: float) -> dict:
    """The ``repro``/``run``/``verdict`` fields of an ``ItemRecord`` for an item that reached a verdict
    (``outcome``: an ``api.Outcome``; ``target``: its ``runtime.Target``; paths already relative)."""
    run, verdict = outcome.run, outcome.verdict
    return {
        "repro": repro,
        "run": {"device": run.device, "inference_precision": run.inference_precision,
                "openvino_version": run.openvino_version, "layer_type": run.layer_type,
                "primitive_type": run.primitive_type, "runtime_precision": run.runtime_precision,
                "isa_cap": target.isa, "cpu_features": cpu_features,
                "config": target.config(), **run.extra,
                "output_precision": run.output_precision, "requested_precision": target.precision,
                "element_type": outcome.case.element_type,
                "read_seconds": round(run.read_seconds, 6),
                "compile_seconds": round(run.compile_seconds, 6), "infer_seconds": round(run.infer_seconds, 6),
                "oracle_seconds": round(oracle_seconds, 6), "compare_seconds": round(outcome.compare_seconds, 6),
                "oracle_streamed": outcome.streamed,
                "ir": ir, "ir_digest": outcome.ir.digest},
        # The tolerance the verdict used travels with it (compare.Verdict.tolerance): nothing recomputes it.
        "verdict": {"passed": verdict.passed, "expected_shape": list(verdict.expected_shape),
                    "actual_shape": list(verdict.actual_shape), "mismatches": verdict.mismatches,
                    "total": verdict.total, "max_abs_error": verdict.max_abs_error,
                    "max_rel_error": verdict.max_rel_error, "max_atol": verdict.max_atol,
                    "rtol": verdict.tolerance.rtol, "exact": verdict.tolerance.exact,
                    "tolerance": verdict.tolerance.describe(), "inferences": len(outcome.verdicts)},
    }


def pass_rate(counts: dict) -> float | None:
    """Passed / (items - skipped), in percent, as OpenVINO's conformance summary computes it."""
    ran = counts["items"] - counts["skipped"]
    return round(100.0 * counts["passed"] / ran, 2) if ran else None


def _cell(counts: Counter, implemented: int) -> dict:
    cell = {"items": sum(counts.values()), "implemented": implemented}
    cell |= {outcome: counts.get(outcome, 0) for outcome in OUTCOMES}
    cell["pass_rate"] = pass_rate(cell)
    return cell


def summarize(records: list[ItemRecord]) -> dict:
    """Counts per op x target and overall, in a deterministic order.

    ``implemented`` counts the items the device compiled and executed (the run
    recorded what it ran); ``pass_rate`` is passed / (items - skipped).
    """
    matrix: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    implemented: dict[str, Counter] = defaultdict(Counter)
    totals: Counter = Counter()
    primitives: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    kinds: dict[str, Counter] = defaultdict(Counter)
    for record in records:
        for kind in record.kinds:
            kinds[kind][record.outcome] += 1
        matrix[record.op][record.target_id][record.outcome] += 1
        totals[record.outcome] += 1
        if record.run.get("layer_type") or record.run.get("primitive_type"):
            implemented[record.op][record.target_id] += 1
        if record.run.get("primitive_type"):
            primitives[record.op][record.target_id].add(record.run["primitive_type"])
    return {
        "totals": _cell(totals, sum(sum(per_target.values()) for per_target in implemented.values())),
        "matrix": {
            op: {target: _cell(counts, implemented[op][target]) for target, counts in sorted(targets.items())}
            for op, targets in sorted(matrix.items())},
        "primitives": {op: {target: sorted(names) for target, names in sorted(targets.items())}
                       for op, targets in sorted(primitives.items())},
        "kinds": {kind: {outcome: counts.get(outcome, 0) for outcome in OUTCOMES}
                  for kind, counts in sorted(kinds.items())},
    }


def json_safe(value):
    """``value`` for strict JSON: inf/nan (e.g. a relative error where the spec says 0) as strings,
    tuples as lists, through dicts and lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def _sort_key(item: dict) -> tuple:
    return item["case_id"], item["target_id"], item["nodeid"]


def _document(environment: dict, items: list[dict]) -> dict:
    items = sorted(items, key=_sort_key)
    records = [ItemRecord(**item) for item in items]
    return {
        "schema": SCHEMA,
        "environment": environment,
        "summary": summarize(records),
        "items": items,
    }


def environment(records, target_ids: list[str]) -> dict:
    """The report's ``environment``: OpenVINO's build string as the items recorded it (a driver that
    never imported OpenVINO, like the xdist controller, has none of its own; it imports OpenVINO
    only when no item recorded one), targets, Python, CPU. Here, not in ``api``: the xdist
    controller writes the report and imports no stage."""
    import platform
    from . import cpu
    recorded = next((record.run["openvino_version"] for record in records
                     if record.run and record.run.get("openvino_version")), None)
    if recorded is None:
        from .runtime import openvino_version
        recorded = openvino_version()
    this_cpu = cpu.this_cpu()
    return {"openvino_version": recorded, "targets": list(target_ids),
            "python": platform.python_version(), "machine": platform.machine(),
            "cpu": this_cpu.model, "cpu_features": list(this_cpu.features),
            **({"onednn_max_cpu_isa": cpu.process_isa_cap()} if cpu.process_isa_cap() else {})}


def build_report(records: list[ItemRecord], environment: dict) -> dict:
    """The whole JSON document: environment, summary, and one row per item."""
    # json_safe already copies every dict and list: no dataclasses.asdict deep copy first (~0.5 ms a record).
    return _document(environment, [json_safe({name: getattr(record, name) for name in _RECORD_FIELDS})
                                   for record in records])


def without_timing(report: dict) -> dict:
    """A copy of ``report`` with every field of ``TIMING_FIELDS`` removed (to compare runs)."""
    copy = json.loads(json.dumps(report))
    for item in copy["items"]:
        for section, key in TIMING_FIELDS:
            (item if section == "item" else item.get(section, {})).pop(key, None)
    return copy


class MergeError(ValueError):
    """Reports that cannot be merged (overlapping items, different schema)."""


def merge_reports(reports: list[tuple[dict, Path | str]], output_dir: Path | str) -> dict:
    """One document from shard reports, as a single run over all their items would write.

    ``reports`` pairs each document with the directory it was read from, so
    repro links (relative to their report) stay valid from ``output_dir``.
    Environments must agree key by key; where they don't (shards on different
    machines), the merged value is the sorted list of distinct values.
    """
    if not reports:
        raise MergeError("no reports to merge")
    items: dict[str, dict] = {}
    environments = []
    for document, directory in reports:
        if document.get("schema") != SCHEMA:
            raise MergeError(f"report from {directory} has schema {document.get('schema')!r}, expected {SCHEMA!r}")
        environments.append(document["environment"])
        for item in document["items"]:
            if item["nodeid"] in items:
                raise MergeError(f"{item['nodeid']} is in more than one report (shards overlap)")
            item = dict(item)
            if item.get("repro"):
                item["repro"] = Path(os.path.relpath(Path(directory) / item["repro"], output_dir)).as_posix()
            items[item["nodeid"]] = item
    return _document(_merge_environments(environments), list(items.values()))


def _merge_environments(environments: list[dict]) -> dict:
    merged = {}
    for key in environments[0]:
        values = [environment.get(key) for environment in environments]
        if key == "targets":  # union, in order of first appearance
            merged[key] = list(dict.fromkeys(target for value in values for target in value or ()))
        elif all(value == values[0] for value in values):
            merged[key] = values[0]
        else:
            merged[key] = sorted({json.dumps(value) for value in values})
    return merged


COUNT_COLUMNS = ("implemented", "passed", "failed", "xfailed", "xpassed", "skipped", "crashed", "hung", "error")
INVALID_CASE_FILE = "(invalid case file)"   # the op of the item standing for a file that did not load


def headline(item: dict) -> str:
    """One line saying why an item did not pass (empty for a passed item)."""
    verdict = item.get("verdict") or {}
    if item["outcome"] in ("failed", "xfailed") and verdict and not verdict.get("passed", True):
        if verdict["expected_shape"] != verdict["actual_shape"]:
            return f"output shape {verdict['actual_shape']}, the spec says {verdict['expected_shape']}"
        return (f"{verdict['mismatches']} of {verdict['total']} elements outside the tolerance, "
                f"max abs error {verdict['max_abs_error']:.6g}")
    reason = (item.get("reason") or "").strip()
    return reason.splitlines()[0] if reason else ""


def performance_groups(items: list[dict]) -> dict[str, list[dict]]:
    """The performance view (``pytest --perf``) of a report's items: the timed ones, grouped by the
    primitive that ran them (groups and rows sorted), each row ``{case_id, target_id, primitive, perf}``."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for item in items:
        timing = item.get("perf") or {}
        if "latency_ms" in timing:
            primitive = (item.get("run") or {}).get("primitive_type") or "(unknown primitive)"
            groups[primitive].append({"case_id": item["case_id"], "target_id": item["target_id"],
                                      "primitive": primitive, "perf": timing})
    return {primitive: sorted(rows, key=lambda row: (row["case_id"], row["target_id"]))
            for primitive, rows in sorted(groups.items())}


def geometric_mean(values: list[float]) -> float | None:
    """The geometric mean of positive ``values`` (the typical latency ratio of a group), None if none."""
    positive = [value for value in values if value and value > 0]
    return math.exp(sum(math.log(value) for value in positive) / len(positive)) if positive else None


def untimed_items(items: list[dict]) -> list[dict]:
    """Items with a ``perf`` record but no timings (an error while timing, a streamed item)."""
    return [item for item in items if item.get("perf") and "latency_ms" not in item["perf"]]


def read_report(path: Path | str) -> dict:
    """A JSON report as written by ``write_report``."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
