"""The case schema: field table, all errors of a file, sweep values located, budget, safety."""
from __future__ import annotations

import textwrap

import pytest

from conformance.case import (SCHEMA, CaseError, CaseFileErrors, footprint_bytes, load_case_file,
                              load_cases_text, parse_size)
from reporting_support import subprocess_project


def errors_of(text: str, **kwargs) -> list[str]:
    with pytest.raises(CaseError) as caught:
        load_cases_text(textwrap.dedent(text), "c.yaml", **kwargs)
    error = caught.value
    return [str(e) for e in error.errors] if isinstance(error, CaseFileErrors) else [str(error)]


def test_every_field_has_a_parser_and_an_allowed_text():
    for name, field in SCHEMA.items():
        assert callable(field.parse) and field.allowed, name


def test_all_errors_of_a_file_are_reported_each_at_its_line():
    messages = errors_of("""\
        op: GroupConvolution
        cases:
          - name: a
            data: [1, 2, 5]
            kernel: [2, 1, 1, 3]
            strides: 0
          - name: b
            data: [1, 2, 5]
            kernel: [2, 1, 1, 3]
            dilation: 1
        """)
    assert messages[0].startswith("c.yaml:6: strides: values must be >= 1, got 0; allowed: integers >= 1")
    assert messages[1].startswith("c.yaml:10: dilation: unknown field; did you mean 'dilations'?")
    assert len(messages) == 2


def test_a_bad_sweep_value_is_reported_at_its_own_line():
    messages = errors_of("""\
        op: GroupConvolution
        cases:
          - name: a
            data: [1, 2, 5]
            kernel: [2, 1, 1, 3]
            sweep:
              strides:
                - 1
                - 2
                - -1
        """)
    assert messages == ["c.yaml:10: sweep.strides: values must be >= 1, got -1; allowed: integers >= 1: "
                        "one integer for every spatial axis, or a list with one per axis"]


def test_memory_budget_refuses_before_allocating_and_is_configurable():
    text = """\
        op: GroupConvolution
        cases:
          - name: big
            data: [1, 1, 100000, 100000]
            kernel: [1, 1, 1, 1, 1]
        """
    [message] = errors_of(text)
    assert message.startswith("c.yaml:4: data: this case needs about ") and "over the memory budget of 16 GiB" in message
    [case] = load_cases_text(textwrap.dedent(text), "c.yaml", memory_budget=None)
    assert footprint_bytes(case) > parse_size("16GiB")
    assert errors_of(text.replace("100000", "100"), memory_budget="1KiB")[0].startswith("c.yaml:4: data: ")


def test_parse_size():
    assert parse_size("16GiB") == 16 << 30
    assert parse_size("2 MB") == 2_000_000
    assert parse_size(123) == 123
    with pytest.raises(ValueError):
        parse_size("lots")


def test_object_tags_are_refused_with_their_line():
    [message] = errors_of("""\
        op: GroupConvolution
        cases:
          - name: a
            data: !!python/object/apply:os.system ["true"]
        """)
    assert message.startswith("c.yaml:4: ") and "no tags such as !!python/object" in message


def test_case_file_outside_the_cases_tree_and_escaping_symlink_are_refused(tmp_path):
    root = tmp_path / "cases"
    root.mkdir()
    outside = tmp_path / "outside.yaml"
    outside.write_text("op: GroupConvolution\ncases:\n  - {name: a, data: [1, 1, 3], kernel: [1, 1, 1, 1]}\n")
    with pytest.raises(CaseError, match="is outside the cases tree"):
        load_case_file(outside, root)
    link = root / "link.yaml"
    link.symlink_to(outside)
    with pytest.raises(CaseError, match="is a symlink to a file outside the cases tree"):
        load_case_file(link, root)
    assert load_case_file(outside)[0].name == "a"  # no root given: nothing to escape from


def test_malformed_file_is_one_failed_item_without_traceback_and_others_still_run(pytester, monkeypatch):
    subprocess_project(pytester, monkeypatch, {
        "bad.yaml": "op: GroupConvolution\ncases:\n  - name: a\n    data: [1, 2, 5]\n"
                    "    kernel: [2, 1, 1, 3]\n    strides: 0\n    stide: 1\n",
        "good.yaml": "op: GroupConvolution\ncases:\n  - {name: ok, data: [1, 2, 5], kernel: [2, 1, 1, 3]}\n"})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*bad.yaml:6: strides: values must be >= 1*", "*bad.yaml:7: stide: unknown field*"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize("style_block", [
    "    data: [1, 2, 5]\n    kernel: [2, 1, 1, 3]\n",
    "    style: pytorch\n    input_shape: [1, 2, 5]\n    in_channels: 2\n    out_channels: 2\n    groups: 2\n"
    "    kernel_size: 3\n",
    "    style: matlab\n    InputSize: [5, 5, 2]\n    FilterSize: 3\n    NumFiltersPerGroup: 1\n    NumGroups: 2\n",
])
def test_common_fields_reach_the_case_in_every_style(style_block):
    text = ("op: GroupConvolution\ncases:\n  - name: a\n" + style_block +
            "    seed: 11\n    fill: uniform\n    marks: [slow]\n    spec_note: SN-1\n    description: d\n"
            "    allow_negative_pads: true\n")
    [case] = load_cases_text(text, "c.yaml")
    assert (case.seed, case.fill, case.marks, case.spec_note, case.description, case.allow_negative_pads) == \
        (11, "uniform", ("slow",), "SN-1", "d", True)


def test_a_field_can_require_another(monkeypatch):
    from conformance.case import Field, _text
    monkeypatch.setitem(SCHEMA, "probe_reason", Field(_text, "text: why", requires=("spec_note",)))
    [message] = errors_of("""\
        op: GroupConvolution
        cases:
          - name: a
            data: [1, 2, 5]
            kernel: [2, 1, 1, 3]
            probe_reason: because
        """)
    assert message.startswith("c.yaml:6: probe_reason: needs 'spec_note' too (text: the docs/spec-notes.md id")
