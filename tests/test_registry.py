"""The expected-failure registry: matching, located errors, strict xfail and XPASS through the plugin."""
from __future__ import annotations

import pytest

from conformance import expectations
from conformance.case import CaseError
from reporting_support import make_suite, read_json

REGISTRY = """\
# known deviations
- case: "backprop.yaml::explicit_*"
  target: "CPU-*"
  openvino: "2026.4.*"
  reason: "all padding at the end"
  spec_note: "docs/spec-notes.md#sn-6"
- case: "*::depthwise*"
  openvino: "2025.*"
  reason: "older release only"
"""


@pytest.fixture
def registry(tmp_path):
    path = tmp_path / "expected_failures.yaml"
    path.write_text(REGISTRY)
    return expectations.load_registry(path)


@pytest.mark.parametrize("case_id, target_id, version, expected_line", [
    ("backprop.yaml::explicit_output_shape[s=2]", "CPU-f32", "2026.4.1-22982-e213a147257-releases/2026/4", 2),
    ("backprop.yaml::explicit_output_shape", "CPU-bf16-avx2", "2026.4.0", 2),
    ("backprop.yaml::explicit_output_shape", "GPU-f32", "2026.4.1", None),     # target pattern
    ("backprop.yaml::explicit_output_shape", "CPU-f32", "2026.5.0", None),     # release pattern
    ("backprop.yaml::same_upper", "CPU-f32", "2026.4.1", None),                # case pattern
    ("conv.yaml::depthwise_3x3", "NPU-f16", "2025.3.0-123-abc", 7),            # target defaults to "*"
    ("conv.yaml::depthwise_3x3", "CPU-f32", "2026.4.1", None),
])
def test_entries_match_case_target_and_release(registry, case_id, target_id, version, expected_line):
    entry = expectations.match(registry, case_id, target_id, version)
    assert (entry.source if entry else None) == (f"expected_failures.yaml:{expected_line}" if expected_line else None)


def test_release_is_the_version_without_the_build():
    assert expectations.release_of("2026.4.1-22982-e213a147257-releases/2026/4") == "2026.4.1"


def test_description_says_how_to_update_the_registry(registry):
    text = registry[0].describe()
    assert "all padding at the end" in text and "docs/spec-notes.md#sn-6" in text
    assert "update the expected-failure registry" in text and "expected_failures.yaml:2" in text


@pytest.mark.parametrize("text, where", [
    ("- case: a\n  openvino: '1'\n  reason: r\n  reson: typo\n", "expected_failures.yaml:4: reson: unknown field"),
    ("- case: a\n  openvino: '1'\n", "expected_failures.yaml:1: reason: is required"),
    ("- case: a\n  openvino: '1'\n  reason: ''\n", "expected_failures.yaml:3: reason: is required"),
    ("- case: a\n  openvino: 2026.4\n  reason: r\n", "expected_failures.yaml:2: openvino: is required"),
    ("- case: a\n  target: [CPU]\n  openvino: '1'\n  reason: r\n", "expected_failures.yaml:2: target: must be a string"),
    ("case: a\n", "expected_failures.yaml:1: expected a list of entries"),
    ("- case: a\n  - b\n", "expected_failures.yaml:2: YAML syntax error"),
    ("- just a string\n", "expected_failures.yaml:1: every entry must be a mapping"),
])
def test_registry_errors_name_file_line_and_field(tmp_path, text, where):
    path = tmp_path / "expected_failures.yaml"
    path.write_text(text)
    with pytest.raises(CaseError) as error:
        expectations.load_registry(path)
    assert str(error.value).startswith(str(tmp_path / where))


def _registry_for(pytester, case_pattern: str) -> None:
    pytester.path.joinpath("expected_failures.yaml").write_text(
        f'- case: "{case_pattern}"\n  openvino: "*"\n  reason: "injected deviation"\n')


def test_matching_failure_is_xfailed_and_the_run_passes(pytester):
    make_suite(pytester, corrupt=True)
    _registry_for(pytester, "conv.yaml::broken_*")
    result = pytester.runpytest()
    result.assert_outcomes(passed=4, xfailed=1)
    assert result.ret == 0
    items = read_json(pytester.path / "reports" / "conformance.json")["items"]
    (broken,) = [item for item in items if "broken" in item["case_id"]]
    assert broken["outcome"] == "xfailed" and "injected deviation" in broken["reason"]
    assert broken["repro"]  # a known deviation keeps its evidence


def test_xpass_fails_the_run_and_says_to_update_the_registry(pytester):
    make_suite(pytester)
    _registry_for(pytester, "conv.yaml::ok_a*")
    result = pytester.runpytest("-rA")
    result.assert_outcomes(passed=3, failed=2)
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*XPASS(strict)*injected deviation*If this item now passes (XPASS), OpenVINO "
                                 "changed: update the expected-failure registry, removing or narrowing the entry "
                                 "at expected_failures.yaml:1*"])
    document = read_json(pytester.path / "reports" / "conformance.json")
    assert document["summary"]["totals"]["xpassed"] == 2
    assert "**xpassed**" in (pytester.path / "reports" / "conformance.md").read_text()


def test_a_broken_registry_fails_items_with_its_location(pytester):
    make_suite(pytester)
    pytester.path.joinpath("expected_failures.yaml").write_text("- case: a\n  openvino: '1'\n  reason: r\n  why: x\n")
    result = pytester.runpytest()
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*expected_failures.yaml:4: why: unknown field*"])
