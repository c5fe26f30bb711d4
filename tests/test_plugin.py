"""The pytest plugin end to end, on a temporary project with its own cases/ tree (pytester).

A failing item is produced by a conftest that changes the device's output (or raises)
for cases whose name contains ``broken``/``raising``, so these tests do not depend on
which deviations the installed OpenVINO has.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree

import pytest

from reporting_support import in_process_project

DEPTHWISE = """\
# depthwise cases
op: GroupConvolution
cases:
  - name: depthwise
    data: [1, 4, 6, 6]
    kernel: [4, 1, 1, 3, 3]
    pads_begin: [1, 1]
    pads_end: [1, 1]
    sweep:
      strides: [[1, 1], [2, 2]]
      auto_pad: [explicit, same_upper]

  - name: broken_grouped
    data: [1, 6, 5]
    kernel: [3, 2, 2, 3]
    pads_begin: [1]
    pads_end: [2]
"""

BACKPROP = """\
op: GroupConvolutionBackpropData
cases:
  - name: upsample
    data: [1, 2, 4]
    kernel: [2, 1, 1, 3]
    strides: [2]
    output_padding: [1]
  - name: raising
    data: [1, 2, 4]
    kernel: [2, 1, 1, 2]
"""

MALFORMED = """\
op: GroupConvolution
cases:
  - name: bad
    data: [1, 4, 6
    kernel: [4, 1, 1, 3]
"""

# Runs in the pytest process (--no-isolate): changes the output of "broken" cases by one
# element and makes OpenVINO "raise" for "raising" ones.
CONFTEST = """\
import dataclasses
import conformance.api as api

_original = api.run


def _run(ir, data, target, *args, **kwargs):
    text = ir.xml_path.read_text()
    if "raising" in text:
        raise RuntimeError("injected: could not create a primitive descriptor")
    result = _original(ir, data, target, *args, **kwargs)
    if "broken" in text:
        output = result.output.copy()
        output[0, 1, 2] += 1.0
        return dataclasses.replace(result, output=output)
    return result


def pytest_configure(config):
    api.run = _run


def pytest_unconfigure(config):
    api.run = _original
"""

REGISTRY = """\
- case: "backprop.yaml::raising"
  openvino: "*"
  fails: error
  reason: "injected compile error"
- case: "nested/conv.yaml::broken_*"
  openvino: "*"
  reason: "injected wrong element"
"""


@pytest.fixture
def project(pytester):
    cases = in_process_project(pytester)
    (cases / "nested").mkdir()
    (cases / "nested" / "conv.yaml").write_text(DEPTHWISE)
    (cases / "backprop.yaml").write_text(BACKPROP)
    pytester.makeconftest(CONFTEST)
    return pytester


def test_ids_are_readable_and_k_selects(project):
    result = project.runpytest("--co", "-q")
    listed = {line for line in result.stdout.lines if "::" in line}
    assert listed == {
        "cases/backprop.yaml::upsample[CPU-f32]",
        "cases/backprop.yaml::raising[CPU-f32]",
        "cases/nested/conv.yaml::depthwise[strides=1x1-auto_pad=explicit][CPU-f32]",
        "cases/nested/conv.yaml::depthwise[strides=1x1-auto_pad=same_upper][CPU-f32]",
        "cases/nested/conv.yaml::depthwise[strides=2x2-auto_pad=explicit][CPU-f32]",
        "cases/nested/conv.yaml::depthwise[strides=2x2-auto_pad=same_upper][CPU-f32]",
        "cases/nested/conv.yaml::broken_grouped[CPU-f32]",
    }
    selected = project.runpytest("-k", "depthwise and 2x2", "-q")
    selected.assert_outcomes(passed=2)


def test_failure_shows_location_shapes_error_index_and_tolerance(project):
    result = project.runpytest("-k", "broken")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "nested/conv.yaml::broken_grouped on CPU-f32: OpenVINO's output differs from the spec" in text
    assert f"case: {project.path / 'cases' / 'nested' / 'conv.yaml'}:13" in text   # the entry's line
    assert "GroupConvolution data=[1, 6, 5] kernel=[3, 2, 2, 3] strides=1 pads_begin=1 pads_end=2" in text
    assert "1 of 36 elements (2.78%) outside the tolerance" in text
    assert "max abs error 1 at [0, 1, 2]" in text
    assert "tolerance: |got-ref| == 0 (exact mode: integer inputs" in text   # integer fill, f32: exact mode
    assert "K=6" in text                                   # C_IN per group (2) x kernel (3)
    assert "ran: CPU precision=f32" in text


def test_malformed_file_is_one_failed_item_and_the_other_files_run(project):
    (project.path / "cases" / "malformed.yaml").write_text(MALFORMED)
    result = project.runpytest("-k", "not broken and not raising")
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines(["*malformed.yaml:5*YAML syntax error*"])
    assert "Traceback" not in result.stdout.str()


def test_junit_xml_and_json_report_are_written(project):
    result = project.runpytest("-k", "upsample or broken", "--junitxml=reports/junit.xml")
    result.assert_outcomes(passed=1, failed=1)
    junit = ElementTree.parse(project.path / "reports" / "junit.xml").getroot()
    names = sorted(case.get("name") for case in junit.iter("testcase"))
    assert names == ["broken_grouped[CPU-f32]", "upsample[CPU-f32]"]
    assert len(list(junit.iter("failure"))) == 1
    report = json.loads((project.path / "reports" / "conformance.json").read_text())
    outcomes = {item["case_id"]: item["outcome"] for item in report["items"]}
    assert outcomes == {"nested/conv.yaml::broken_grouped": "failed", "backprop.yaml::upsample": "passed"}
    (broken,) = [item for item in report["items"] if item["outcome"] == "failed"]
    assert broken["verdict"]["mismatches"] == 1 and broken["verdict"]["max_abs_error"] == 1.0
    assert broken["source"].endswith("conv.yaml:13")


def test_registry_entries_are_strict_xfails_of_their_kind(project):
    (project.path / "expected_failures.yaml").write_text(REGISTRY)
    result = project.runpytest("-rxX")
    result.assert_outcomes(passed=5, xfailed=2)
    result.stdout.fnmatch_lines(["*injected compile error*", "*injected wrong element*"])
    assert result.ret == 0


def test_an_error_is_not_hidden_by_a_mismatch_entry(project):
    # The "raising" item raises; an entry that expects a wrong *output* must not cover it.
    (project.path / "expected_failures.yaml").write_text(
        '- case: "backprop.yaml::raising"\n  openvino: "*"\n  reason: "expects a mismatch"\n')
    result = project.runpytest("-k", "raising")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*injected: could not create a primitive descriptor*"])


def test_xpass_fails_the_run(project):
    (project.path / "expected_failures.yaml").write_text(
        '- case: "backprop.yaml::upsample"\n  openvino: "*"\n  reason: "claimed deviation"\n')
    result = project.runpytest("-k", "upsample")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*XPASS(strict)*claimed deviation*"])
    assert result.ret != 0
