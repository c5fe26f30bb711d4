"""No input file stops a run (README "Limits", "Safe input").

- tricky but valid inputs still load (the loader refuses only what the specs forbid or what the
  harness cannot represent or compute);
- file-level problems (size, symlinks, unreadable, empty directories) name the file;
- an unexpected exception while loading or collecting is a located problem, never a traceback
  or an interrupted session;
- limits are checked before anything is expanded;
- a tree holding every catalogue file plus good ones runs to completion, serially and under
  ``-n 2``, with the same JSON report, every bad file a failed item at its file:line.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from conformance import api, case as case_module, cli, markdown_report, report
from conformance.case import (INT32_MAX, INT64_MAX, MAX_CASES_PER_FILE, MAX_FILE_BYTES, MAX_SWEEP_COMBINATIONS,
                              MAX_TOLERANCE_SCALE, CaseError, load_case_file, load_cases_text)
from reporting_support import BACKPROP, CASES, in_process_project, read_json, subprocess_env
from test_bad_cases import FILES, expectations

GOOD = "op: GroupConvolution\ncases:\n  - name: a\n    data: [1, 4, 6, 6]\n    kernel: [2, 2, 2, 3, 3]\n"


def _one(text: str):
    [loaded] = load_cases_text(text, "f.yaml")
    return loaded


# --- tricky but valid ----------------------------------------------------------------------

def test_line_endings_and_a_byte_order_mark_are_valid():
    for variant in (GOOD.replace("\n", "\r\n"), GOOD.replace("\n", "\r"), "\ufeff" + GOOD,
                    "#\ta comment with a tab\n" + GOOD):
        assert _one(variant).data_shape == (1, 4, 6, 6)


def test_yaml_1_1_number_and_boolean_forms_load_as_yaml_reads_them():
    loaded = _one(GOOD + "    strides: [010, 0x2]\n    pads_begin: -0\n    allow_negative_pads: yes\n")
    assert loaded.strides == (8, 2) and loaded.pads_begin == (0, 0) and loaded.allow_negative_pads is True


def test_an_anchor_without_an_alias_and_printable_unicode_text_are_valid():
    loaded = _one(GOOD.replace("data:", "data: &shape") + "    description: \"caf\u00e9 \u2264 \u2211 \U0001F600\"\n")
    assert loaded.description == "caf\u00e9 \u2264 \u2211 \U0001F600"


def test_names_with_markup_characters_are_valid():
    assert _one(GOOD.replace("name: a", "name: 'a\"<&>''b'")).name == "a\"<&>'b"


def test_huge_but_representable_attributes_load_and_the_oracle_computes_them():
    """Loading accepts what int64 (and, for BackpropData's strides/dilations, torch's int32) holds;
    such a case has an expected output (what a device does with it is the run's verdict)."""
    group = _one(GOOD + f"    strides: [{1 << 40}, {INT64_MAX}]\n")
    backprop = _one("op: GroupConvolutionBackpropData\ncases:\n  - name: a\n    data: [1, 4, 1, 1]\n"
                    f"    kernel: [2, 2, 2, 1, 1]\n    strides: {INT32_MAX}\n    dilations: {INT32_MAX}\n")
    # Strides past int32 are computed by index (the windows packed), not by torch's stride argument.
    backprop_strided = _one("op: GroupConvolutionBackpropData\ncases:\n  - name: a\n    data: [1, 4, 1, 1]\n"
                            f"    kernel: [2, 2, 2, 1, 1]\n    strides: [{(1 << 32) + 1}, {INT64_MAX}]\n")
    for loaded in (group, backprop, backprop_strided):
        inputs = api.make_inputs(loaded)
        assert api.expected_output(loaded, inputs.data, inputs.kernel).shape == (1, 4, 1, 1)


def test_the_limits_themselves_are_accepted():
    assert _one(GOOD + f"    tolerance: {{scale: {MAX_TOLERANCE_SCALE}, reason: \"wide\"}}\n").tolerance_scale == 2 ** 24
    assert _one(GOOD + f"    seed: {INT64_MAX}\n").seed == INT64_MAX


def test_a_sweep_of_exactly_the_limit_loads():
    seeds = ", ".join(str(v) for v in range(MAX_SWEEP_COMBINATIONS // 2))
    loaded = load_cases_text(GOOD + f"    sweep:\n      seed: [{seeds}]\n      fill: [integers, uniform]\n", "f.yaml")
    assert len(loaded) == MAX_SWEEP_COMBINATIONS


# --- limits are checked before expanding -----------------------------------------------------

def _never_expanded(monkeypatch):
    def expanded(*args, **kwargs):
        raise AssertionError("a case was built")
    monkeypatch.setattr(case_module, "_build_case", expanded)


def test_a_sweep_of_a_million_combinations_is_refused_at_once(monkeypatch):
    _never_expanded(monkeypatch)
    ten = "[" + ", ".join(str(v) for v in range(1, 11)) + "]"
    text = GOOD + "    sweep:\n" + "".join(f"      {key}: {ten}\n" for key in
                                             ("strides", "dilations", "pads_begin", "pads_end", "seed", "fill_range"))
    start = time.perf_counter()
    with pytest.raises(CaseError) as refused:
        load_cases_text(text, "f.yaml")
    assert time.perf_counter() - start < 1.0
    assert str(refused.value).startswith("f.yaml:6: sweep: 1000000 combinations (10 strides x 10 dilations")
    assert f"over the limit of {MAX_SWEEP_COMBINATIONS} per case entry" in str(refused.value)


def test_a_file_expanding_beyond_the_per_file_limit_is_refused_before_expanding(monkeypatch):
    _never_expanded(monkeypatch)
    seeds = ", ".join(str(v) for v in range(MAX_SWEEP_COMBINATIONS))
    entry = "  - name: e{}\n    data: [1, 4, 6, 6]\n    kernel: [2, 2, 2, 3, 3]\n    sweep:\n      seed: [" + seeds + "]\n"
    entries = MAX_CASES_PER_FILE // MAX_SWEEP_COMBINATIONS + 1
    text = "op: GroupConvolution\ncases:\n" + "".join(entry.format(i) for i in range(entries))
    with pytest.raises(CaseError) as refused:
        load_cases_text(text, "f.yaml")
    assert str(refused.value).startswith(f"f.yaml:{3 + 5 * (entries - 1)}: cases: the file would expand to "
                                         f"{MAX_SWEEP_COMBINATIONS * entries} or more cases")


# --- file-level problems ---------------------------------------------------------------------

def test_file_level_problems_name_the_file(tmp_path):
    root = tmp_path / "cases"
    (root / "sub").mkdir(parents=True)
    (root / "big.yaml").write_text(GOOD + "#" * MAX_FILE_BYTES + "\n")
    (root / "dir.yaml").mkdir()
    (root / "loop_a.yaml").symlink_to(root / "loop_b.yaml")
    (root / "loop_b.yaml").symlink_to(root / "loop_a.yaml")
    (root / "dangling.yaml").symlink_to(root / "missing.yaml")
    os.mkfifo(root / "fifo.yaml")
    (tmp_path / "outside.yaml").write_text(GOOD)
    (root / "good.yaml").write_text(GOOD)
    problems = {}
    for name in ("big.yaml", "dir.yaml", "loop_a.yaml", "dangling.yaml", "fifo.yaml", "sub/../../outside.yaml"):
        with pytest.raises(CaseError) as refused:
            load_case_file(root / name, root)
        problems[name] = str(refused.value)
        assert problems[name].startswith(f"{root / name}: "), problems[name]
        assert "Traceback" not in problems[name]
    assert f"a case file may be at most {case_module.format_size(MAX_FILE_BYTES)}" in problems["big.yaml"]
    assert "cannot read: Is a directory" in problems["dir.yaml"]
    assert "cannot read: a symlink loop" in problems["loop_a.yaml"]
    assert "cannot read: No such file or directory" in problems["dangling.yaml"]
    assert "is not a regular file (a FIFO" in problems["fifo.yaml"]
    assert "is outside the cases tree" in problems["sub/../../outside.yaml"]
    assert load_case_file(root / "sub" / ".." / "good.yaml", root)[0].id == "good.yaml::a"


@pytest.mark.parametrize("content", [{}, {"notes.txt": "op: GroupConvolution\n"}], ids=["empty", "no-yaml"])
def test_validate_exits_non_zero_on_a_directory_without_case_files(tmp_path, capsys, content):
    for name, text in content.items():
        (tmp_path / name).write_text(text)
    assert cli.main(["validate", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert f"{tmp_path}: no case files (*.yaml, *.yml) in this directory" in out
    assert "1 problem(s)" in err


# --- unexpected exceptions -------------------------------------------------------------------

def test_an_unexpected_exception_while_loading_is_a_case_error_naming_the_file(monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("a harness bug")
    monkeypatch.setattr(case_module, "_build_case", broken)
    with pytest.raises(CaseError) as refused:
        load_cases_text(GOOD, "f.yaml")
    assert str(refused.value) == ("f.yaml: could not be loaded: unexpected ZeroDivisionError: 'a harness bug' "
                                  "(a harness bug: please report it with this file)")
    cases, problems = api.validate([Path(__file__).parent.parent / "cases" / "spec_notes"])
    assert cases == [] and problems and all("ZeroDivisionError" in str(problem) for problem in problems)


BREAK_LOADING = """
import conformance.case

_original = conformance.case._build_case


def _broken(*args, **kwargs):
    raise ZeroDivisionError("a harness bug")


def pytest_configure(config):
    conformance.case._build_case = _broken


def pytest_unconfigure(config):
    conformance.case._build_case = _original
"""

BREAK_COLLECTING = """
import conformance.api

_original = conformance.api.load_cases


def _broken(*args, **kwargs):
    raise RuntimeError("collecting")


def pytest_configure(config):
    conformance.api.load_cases = _broken


def pytest_unconfigure(config):
    conformance.api.load_cases = _original
"""


@pytest.mark.parametrize("conftest, message", [
    (BREAK_LOADING, "cases/conv.yaml: could not be loaded: unexpected ZeroDivisionError"),
    (BREAK_COLLECTING, "cases/conv.yaml: could not be collected: unexpected RuntimeError: 'collecting'"),
], ids=["loading", "collecting"])
def test_an_unexpected_exception_while_collecting_is_an_invalid_case_file_item(pytester, conftest, message):
    cases = in_process_project(pytester)
    (cases / "conv.yaml").write_text(CASES)
    pytester.makeconftest(conftest)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*{message}*"])
    assert "Interrupted" not in result.stdout.str() and "Traceback" not in result.stdout.str()
    [item] = read_json(pytester.path / "reports" / "conformance.json")["items"]
    assert (item["case_id"], item["source"], item["outcome"]) == ("cases/conv.yaml", "cases/conv.yaml:1", "failed")


# --- the whole catalogue in one run ------------------------------------------------------------

def _catalogue_project(pytester) -> Path:
    cases = in_process_project(pytester)
    (cases / "conv.yaml").write_text(CASES)
    (cases / "backprop.yaml").write_text(BACKPROP)
    bad = cases / "bad"
    bad.mkdir()
    for path in FILES:
        shutil.copyfile(path, bad / path.name)
    return cases


def test_every_bad_file_is_one_failed_item_and_the_run_completes_serially_and_under_xdist(pytester, monkeypatch):
    _catalogue_project(pytester)
    serial_run = pytester.runpytest()
    serial_run.assert_outcomes(passed=5, failed=len(FILES))
    assert "Interrupted" not in serial_run.stdout.str() and "Traceback" not in serial_run.stdout.str()
    reports = pytester.path / "reports"
    serial = read_json(reports / "conformance.json")
    markdown = (reports / "conformance.md").read_text(encoding="utf-8")

    items = {item["case_id"]: item for item in serial["items"]}
    for path in FILES:
        expected = expectations(path)
        item = items[f"cases/bad/{path.name}"]
        assert item["outcome"] == "failed" and item["op"] == "(invalid case file)"
        assert item["source"] == f"cases/bad/{path.name}:{expected[0][0]}"
        for line, field, fragment in expected:
            where = f"cases/bad/{path.name}:{line}: " + (f"{field}: " if field else "")
            assert where in item["reason"] and fragment in item["reason"], (where, item["reason"])
    # The Markdown names the first files' file:line (it lists 50 failures).
    for path in FILES[:markdown_report.MARKDOWN_FAILURES]:
        assert f"`cases/bad/{path.name}:{expectations(path)[0][0]}`" in markdown
    assert serial["summary"]["totals"]["failed"] == len(FILES) and serial["summary"]["totals"]["passed"] == 5

    subprocess_env(monkeypatch)
    parallel_run = pytester.runpytest_subprocess("-n", "2")
    parallel_run.assert_outcomes(passed=5, failed=len(FILES))
    assert "Interrupted" not in parallel_run.stdout.str()
    parallel = read_json(reports / "conformance.json")
    assert report.without_timing(parallel) == report.without_timing(serial)
    assert (reports / "conformance.md").read_text(encoding="utf-8") == markdown


def test_a_failed_collector_of_another_kind_is_an_error_row_serially_and_under_xdist(pytester, monkeypatch):
    """Not a case file: a broken test module beside the cases. pytest stops a serial run at it unless
    --continue-on-collection-errors; xdist goes on. Either way it is an ``error`` row of the report."""
    cases = in_process_project(pytester)
    (cases / "conv.yaml").write_text(GOOD)
    (cases / "test_broken.py").write_text("import a_module_that_does_not_exist\n")
    pytester.runpytest("--continue-on-collection-errors").assert_outcomes(passed=1, errors=1)
    serial = read_json(pytester.path / "reports" / "conformance.json")
    rows = [item for item in serial["items"] if item["outcome"] == "error"]
    assert [(row["case_id"], row["op"]) for row in rows] == [("cases/test_broken.py", "(collection error)")]
    assert "No module named 'a_module_that_does_not_exist'" in rows[0]["reason"]
    subprocess_env(monkeypatch)
    pytester.runpytest_subprocess("-n", "2").assert_outcomes(passed=1, errors=1)
    parallel = read_json(pytester.path / "reports" / "conformance.json")
    assert report.without_timing(parallel) == report.without_timing(serial)


def test_a_case_file_whose_name_is_not_printable_utf8_is_an_invalid_item_serially_and_under_xdist(
        pytester, monkeypatch):
    """Its name would be in every test id and report row: refused, and shown escaped (xdist cannot even
    send a non-UTF-8 node id between processes)."""
    cases = in_process_project(pytester)
    (cases / "conv.yaml").write_text(GOOD)
    (cases / os.fsdecode(b"latin1_caf\xe9.yaml")).write_text(GOOD)
    (cases / "\u202elmay.yaml").write_text(GOOD)   # displays reversed
    (cases / os.fsdecode(b"dir\xff")).mkdir()
    (cases / os.fsdecode(b"dir\xff") / "x.yaml").write_text(GOOD)
    pytester.runpytest().assert_outcomes(passed=1, failed=3)
    serial = read_json(pytester.path / "reports" / "conformance.json")
    invalid = {item["case_id"]: item["reason"] for item in serial["items"] if item["outcome"] == "failed"}
    assert sorted(invalid) == ["cases/\\u202elmay.yaml", "cases/dir\\xff/x.yaml", "cases/latin1_caf\\xe9.yaml"]
    for case_id, reason in invalid.items():
        assert f"{case_id}: the file's name is not printable UTF-8 text" in reason
    subprocess_env(monkeypatch)
    pytester.runpytest_subprocess("-n", "2").assert_outcomes(passed=1, failed=3)
    assert report.without_timing(read_json(pytester.path / "reports" / "conformance.json")) == \
        report.without_timing(serial)
