"""report.py: summary counts, deterministic JSON, shard merging, Markdown."""
from __future__ import annotations

import json

import pytest

from conformance import markdown_report, report, report_writer
from conformance.report import ItemRecord


def _record(name: str, outcome: str, target: str = "CPU-f32", op: str = "GroupConvolution", **fields) -> ItemRecord:
    run = fields.pop("run", {"primitive_type": "jit_avx2", "layer_type": "Convolution", "compile_seconds": 0.1})
    if outcome in ("crashed", "hung", "skipped"):
        run = {}
    return ItemRecord(nodeid=f"cases/f.yaml::{name}[{target}]", case_id=f"f.yaml::{name}", target_id=target,
                      op=op, source="cases/f.yaml:3", outcome=outcome, run=run, **fields)


RECORDS = [
    _record("a", "passed"), _record("b", "failed", repro="repro/b"), _record("c", "xfailed"),
    _record("d", "skipped"), _record("e", "crashed"), _record("f", "hung"),
    _record("a", "passed", target="CPU-bf16"), _record("g", "passed", op="GroupConvolutionBackpropData"),
]


def test_matrix_counts_implemented_and_pass_rate():
    summary = report.summarize(RECORDS)
    cell = summary["matrix"]["GroupConvolution"]["CPU-f32"]
    assert cell == {"items": 6, "implemented": 3, "passed": 1, "failed": 1, "xfailed": 1, "xpassed": 0,
                    "skipped": 1, "crashed": 1, "hung": 1, "error": 0, "pass_rate": 20.0}
    assert summary["matrix"]["GroupConvolution"]["CPU-bf16"]["pass_rate"] == 100.0
    assert summary["totals"]["items"] == 8 and summary["totals"]["crashed"] == 1 and summary["totals"]["hung"] == 1
    assert list(summary["matrix"]) == ["GroupConvolution", "GroupConvolutionBackpropData"]
    assert list(summary["matrix"]["GroupConvolution"]) == ["CPU-bf16", "CPU-f32"]


def test_only_skipped_has_no_pass_rate():
    assert report.summarize([_record("d", "skipped")])["totals"]["pass_rate"] is None


def test_document_order_does_not_depend_on_record_order():
    environment = {"openvino_version": "2026.4.1", "targets": ["CPU-f32"]}
    forward = report.build_report(RECORDS, environment)
    backward = report.build_report(list(reversed(RECORDS)), environment)
    assert json.dumps(forward) == json.dumps(backward)
    assert [item["case_id"] for item in forward["items"]] == sorted(item["case_id"] for item in forward["items"])


def test_json_is_strict_even_with_infinite_relative_error(tmp_path):
    record = _record("b", "failed", verdict={"max_rel_error": float("inf"), "max_abs_error": 9.0})
    path, markdown_path, html_path = report_writer.write_report(report.build_report([record], {"targets": []}),
                                                         tmp_path / "r.json")
    document = json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"non-standard JSON {name}"))
    assert document["items"][0]["verdict"]["max_rel_error"] == "inf"
    assert markdown_path.name == "r.md" and html_path.name == "r.html"


def test_without_timing_drops_only_timing_fields():
    document = report.build_report(RECORDS, {"targets": ["CPU-f32"]})
    stripped = report.without_timing(document)
    item = stripped["items"][0]
    assert "duration_seconds" not in item and "compile_seconds" not in item["run"]
    assert item["run"]["primitive_type"] == "jit_avx2"
    assert "duration_seconds" in document["items"][0]  # the original is untouched


def test_merge_equals_single_document_and_rebases_repro_links(tmp_path):
    environment = {"openvino_version": "2026.4.1", "targets": ["CPU-f32", "CPU-bf16"]}
    whole = report.build_report(RECORDS, environment)
    first = report.build_report(RECORDS[::2], environment)
    second = report.build_report(RECORDS[1::2], environment)
    merged = report.merge_reports([(first, tmp_path), (second, tmp_path)], tmp_path)
    assert merged == whole
    elsewhere = report.merge_reports([(first, tmp_path / "shard1"), (second, tmp_path / "shard2")], tmp_path)
    assert [item["repro"] for item in elsewhere["items"] if item["repro"]] == ["shard2/repro/b"]


def test_merge_refuses_overlapping_shards(tmp_path):
    document = report.build_report(RECORDS[:2], {"targets": ["CPU-f32"]})
    with pytest.raises(report.MergeError, match=r"cases/f.yaml::a\[CPU-f32\] is in more than one report"):
        report.merge_reports([(document, tmp_path), (document, tmp_path)], tmp_path)


def test_merge_keeps_differing_environment_values(tmp_path):
    first = report.build_report(RECORDS[:1], {"cpu": "a", "targets": ["CPU-f32"]})
    second = report.build_report(RECORDS[6:7], {"cpu": "b", "targets": ["CPU-bf16"]})
    merged = report.merge_reports([(first, tmp_path), (second, tmp_path)], tmp_path)
    assert merged["environment"] == {"cpu": ['"a"', '"b"'], "targets": ["CPU-f32", "CPU-bf16"]}


def test_markdown_lists_counts_and_failures_with_repro():
    text = markdown_report.markdown(report.build_report(RECORDS, {"openvino_version": "2026.4.1", "targets": ["CPU-f32"]}))
    assert "| GroupConvolution | CPU-f32 | 3 | 1 | 1 | 1 | 0 | 1 | 1 | 1 | 0 | 20.0% |" in text
    assert "`f.yaml::b` [CPU-f32] **failed**" in text and "(repro: `repro/b`)" in text
    assert "`f.yaml::e` [CPU-f32] **crashed**" in text and "`f.yaml::f` [CPU-f32] **hung**" in text
    assert "f.yaml::c" not in text.split("### Failures")[1]  # an expected failure is not a failure


def test_markdown_lists_at_most_fifty_failures():
    records = [_record(f"case{index:03}", "failed") for index in range(60)]
    text = markdown_report.markdown(report.build_report(records, {"targets": ["CPU-f32"]}))
    assert text.count("**failed**") == 50 and "... and 10 more" in text


def test_html_shows_the_cross_target_section_when_present():
    from conformance.html_report import html
    document = report.build_report(RECORDS, {"targets": ["CPU-f32", "CPU-bf16"]})
    assert 'id="cross-target"' not in html(document)
    document["cross_target"] = {"pairs": {"CPU-f32 vs CPU-bf16": {
        "cases": 1, "identical": 0, "differing": 1, "beyond_tolerance": 1, "max_abs_diff": None}}}
    page = html(document)
    assert 'id="cross-target"' in page and "CPU-f32 vs CPU-bf16" in page and "shape/NaN" in page


def test_expected_failures_read_as_expected_in_a_green_run():
    """Passed + xfailed only: green cells, no red, and the summaries say nothing unexpected happened;
    one real failure turns its cell red."""
    from lxml import html as lxml_html

    from conformance.html_report import html
    green = [_record("a", "passed"), _record("c", "xfailed"), _record("h", "xfailed"), _record("i", "xfailed")]
    document = report.build_report(green, {"targets": ["CPU-f32"]})
    assert document["summary"]["totals"]["pass_rate"] == 25.0   # the rate is still the rate
    page = lxml_html.fromstring(html(document))
    cell = page.get_element_by_id("matrix").find(".//td")
    assert "good" in cell.get("class").split() and "25.0%" in cell.text_content()
    assert not page.find_class("bad") and not page.find_class("warn")
    assert "No unexpected outcomes; 3 expected failures" in markdown_report.markdown(document)
    document = report.build_report(green + [_record("b", "failed")], {"targets": ["CPU-f32"]})
    page = lxml_html.fromstring(html(document))
    assert "bad" in page.get_element_by_id("matrix").find(".//td").get("class").split()
    assert "**1 unexpected outcome(s)** (failed); 3 expected failures" in markdown_report.markdown(document)
