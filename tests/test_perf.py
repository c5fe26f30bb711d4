"""The performance view (pytest --perf): the work count, the records, the reports, and compare-bundles'
performance regressions (planted slowdown, identical runs, refusals).

No test here asserts how fast anything runs: only that the figures are present and consistent.
"""
from __future__ import annotations

import io
import json
import math
import os
import shutil
import subprocess
import sys
from dataclasses import replace

import pytest

from conformance import api, cpu, perf
from conformance.bundles import compare_bundles_command, load_bundle

from reporting_support import SMALL_CASES, checkout_pythonpath, make_suite, read_json, write_project

CONV = """
op: GroupConvolution
cases:
  - name: hand
    data: [1, 4, 5, 5]
    kernel: [2, 3, 2, 3, 3]
    pads_begin: [1, 1]
    pads_end: [1, 1]
"""

# A layer that keeps OpenVINO well above the call overhead (perf.DEFAULT_MIN_LATENCY_MS) on any CPU
# (58 MFLOP: 0.3 ms even at 200 GFLOP/s on one thread), so that the identical-runs test exercises the
# regression rule rather than the floor.
MEDIUM = """
op: GroupConvolution
cases:
  - name: resnext_grouped
    data: [1, 64, 56, 56]
    kernel: [4, 16, 16, 3, 3]
    pads_begin: [1, 1]
    pads_end: [1, 1]
"""

TIMED_KEYS = ("latency_ms", "min_ms", "q1_ms", "q3_ms", "spread", "repeats", "torch_latency_ms", "torch_min_ms",
              "torch_spread", "torch_repeats", "ratio", "gflops", "gflops_per_s", "threads", "warmup",
              "budget_seconds", "cpu_model", "isa_cap")


def _case(text: str, name: str = "hand"):
    return next(case for case in api.load_cases_text(text) if case.name == name)


@pytest.mark.parametrize("text, multiply_adds", [
    (CONV, 6 * 25 * 2 * 9),                                   # output [1,6,5,5] x C_IN 2 x 3x3
    ("op: Convolution\ncases:\n  - name: hand\n    data: [1, 3, 8, 8]\n    kernel: [4, 3, 3, 3]\n",
     4 * 36 * 27),                                            # output [1,4,6,6] x 3 x 3x3
    ("op: GroupConvolutionBackpropData\ncases:\n  - name: hand\n    data: [1, 2, 4]\n    kernel: [2, 1, 2, 3]\n"
     "    strides: 2\n", 8 * 2 * 3),                          # data elements x C_OUT 2 x kernel 3
    ("op: ConvolutionBackpropData\ncases:\n  - name: hand\n    data: [1, 2, 3]\n    kernel: [2, 5, 3]\n"
     "    pads_begin: 1\n    pads_end: 1\n", 6 * 5 * 3),     # the crop does not change the work
])
def test_gflop_by_hand(text, multiply_adds):
    assert perf.gflop(_case(text)) == pytest.approx(2 * multiply_adds / 1e9)


@pytest.mark.parametrize("text", [
    "op: GroupConvolution\ncases:\n  - name: hand\n    data: [2, 6, 7, 5]\n    kernel: [3, 4, 2, 3, 2]\n"
    "    strides: [2, 1]\n    dilations: [1, 2]\n",
    "op: GroupConvolutionBackpropData\ncases:\n  - name: hand\n    data: [2, 6, 4, 3]\n    kernel: [3, 2, 5, 3, 2]\n"
    "    strides: [3, 2]\n    dilations: [2, 1]\n",
])
def test_gflop_counts_every_product_without_padding(text):
    """With no padding and no crop, the op on all-ones inputs sums exactly one per product."""
    import torch
    from conformance.oracle import apply_op
    case = _case(text)
    ones = apply_op(case, torch.ones(case.data_shape, dtype=torch.float64),
                    torch.ones(case.kernel_shape, dtype=torch.float64))
    assert perf.gflop(case) == pytest.approx(2 * float(ones.sum()) / 1e9)


def test_timings_summary():
    summary = perf.Timings((0.004, 0.001, 0.002, 0.003, 0.005)).summary("x_")
    assert summary == {"x_latency_ms": 3.0, "x_min_ms": 1.0, "x_q1_ms": 2.0, "x_q3_ms": 4.0,
                       "x_spread": pytest.approx(2 / 3, abs=1e-4), "x_repeats": 5}


def test_measure_records_consistent_figures():
    case, target = _case(CONV), api.Target("CPU", "f32")
    outcome = api.check(case, target, isolate=False)
    import torch
    threads_before = torch.get_num_threads()
    record = perf.measure(outcome, target, perf.PerfSettings(budget_seconds=0.01), api.feeds(outcome.ir, outcome.steps)[0])
    assert torch.get_num_threads() == threads_before   # restored
    assert set(TIMED_KEYS) <= set(record), record
    assert record["repeats"] >= perf.PerfSettings.min_repeats and record["torch_repeats"] >= 5
    assert record["min_ms"] <= record["q1_ms"] <= record["latency_ms"] <= record["q3_ms"]
    assert record["threads"] == 1 and record["cpu_model"] == cpu.this_cpu().model
    assert record["gflops"] == pytest.approx(2 * 2700 / 1e9)
    assert record["gflops_per_s"] == pytest.approx(record["gflops"] / (record["latency_ms"] / 1000), rel=1e-3)
    assert record["ratio"] == pytest.approx(record["latency_ms"] / record["torch_latency_ms"], rel=1e-3)
    assert perf.measure(replace(outcome, streamed=True), target, perf.PerfSettings(), None) == {
        "not_measured": perf.NOT_MEASURED_STREAMED}


def test_session_times_only_passed_items_when_asked():
    case, target = _case(CONV), api.Target("CPU", "f32")
    outcome = api.check(case, target, isolate=False)
    assert api.RunSession(isolate=False).measure_performance(outcome, target) is None
    timed = api.RunSession(isolate=False, perf_settings=perf.PerfSettings(budget_seconds=0.0))
    failed = replace(outcome, verdict=replace(outcome.verdict, passed=False))
    assert timed.measure_performance(failed, target) is None
    assert "latency_ms" in timed.measure_performance(outcome, target)


def test_perf_run_reports_every_passed_item(pytester):
    make_suite(pytester, corrupt=True)
    result = pytester.runpytest("--perf", "--perf-budget", "0.01", "--save-results", "bundle")
    result.assert_outcomes(passed=4, failed=1)   # timing changes no verdict
    items = read_json(pytester.path / "reports" / "conformance.json")["items"]
    for item in items:
        if item["outcome"] == "passed":
            assert set(TIMED_KEYS) <= set(item["perf"]), item["perf"]
        else:
            assert item["perf"] is None
    _, bundle = load_bundle(pytester.path / "bundle")
    assert sum("latency_ms" in (entry.metadata.get("perf") or {}) for entry in bundle.values()) == 4
    markdown = (pytester.path / "reports" / "conformance.md").read_text()
    assert "### Performance (pytest --perf)" in markdown
    assert sum(line.startswith("| `") and "CPU-f32" in line for line in markdown.split(
        "### Performance")[1].splitlines()) == 4


def test_no_perf_without_the_option(pytester):
    make_suite(pytester)
    pytester.runpytest().assert_outcomes(passed=5)
    items = read_json(pytester.path / "reports" / "conformance.json")["items"]
    assert all(item["perf"] is None for item in items)
    assert "Performance" not in (pytester.path / "reports" / "conformance.md").read_text()


# --- compare-bundles -------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_timed_runs(tmp_path_factory):
    """Two separate pytest sessions over the same cases with --perf, each saving a bundle."""
    project = tmp_path_factory.mktemp("perf-project")
    write_project(project, {"small.yaml": SMALL_CASES, "medium.yaml": MEDIUM})
    bundles = []
    for name in ("a", "b"):
        completed = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--perf", "--perf-budget", "0.1",
             "--save-results", str(project / name)],
            cwd=project, env={**os.environ, "PYTHONPATH": checkout_pythonpath()}, capture_output=True, text=True)
        assert completed.returncode == 0, completed.stdout + completed.stderr
        bundles.append(project / name)
    return bundles


def _compare(a, b, **options) -> tuple[int, str]:
    out = io.StringIO()
    return compare_bundles_command(str(a), str(b), out=out, **options), out.getvalue()


def _edit_perf(bundle, change, case_suffix: str | None = None) -> None:
    """Apply ``change`` to the perf record of the bundle's items (those whose case id ends with ``case_suffix``)."""
    for path in (bundle / "items").glob("*.json"):
        metadata = json.loads(path.read_text())
        if case_suffix is None or metadata["case_id"].endswith(case_suffix):
            metadata["perf"] = change(metadata["perf"])
            path.write_text(json.dumps(metadata))


def test_identical_runs_report_no_regression(two_timed_runs):
    code, text = _compare(*two_timed_runs)
    assert code == 0, text
    assert "performance: 3 item(s) timed in both; 0 regression(s)" in text
    _, items = load_bundle(two_timed_runs[0])
    medium = items[("medium.yaml::resnext_grouped", "CPU-f32")].metadata["perf"]
    assert medium["latency_ms"] >= perf.DEFAULT_MIN_LATENCY_MS   # above the floor: the rule itself decided


STEADY = {"latency_ms": 1.0, "min_ms": 0.9, "q1_ms": 0.95, "q3_ms": 1.1, "torch_latency_ms": 2.0,
          "torch_min_ms": 1.9, "torch_q1_ms": 1.95, "torch_q3_ms": 2.1}


def _slower(record: dict, factor: float, torch_too: bool = False) -> dict:
    keys = [key for key in STEADY if torch_too or not key.startswith("torch_")]
    return {**record, **{key: record[key] * factor for key in keys}}


def _steady_copies(bundle, tmp_path):
    """Two copies of a result bundle with the same quiet timings (a real run's spread depends on the
    machine's load), for a planted change in one of them."""
    a, b = tmp_path / "a", tmp_path / "b"
    for copy in (a, b):
        shutil.copytree(bundle, copy)
        _edit_perf(copy, lambda record: {**record, **STEADY})
    return a, b


def test_planted_slowdown_is_reported(two_timed_runs, tmp_path):
    a, b = _steady_copies(two_timed_runs[0], tmp_path)   # then 2x in B
    _edit_perf(b, lambda record: _slower(record, 2.0), "::resnext_grouped")
    code, text = _compare(a, b)
    assert code == 1, text
    assert "1 regression(s)" in text and "medium.yaml::resnext_grouped" in text and "2.00x" in text
    assert _compare(a, b, perf_threshold=2.5)[0] == 0   # the threshold is an option


def test_machine_wide_slowdown_is_not_a_regression(two_timed_runs, tmp_path):
    a, b = _steady_copies(two_timed_runs[0], tmp_path)
    _edit_perf(b, lambda record: _slower(record, 2.0, torch_too=True))
    code, text = _compare(a, b)
    assert code == 0 and "0 regression(s)" in text and "torch slowed 2.00x too" in text


@pytest.mark.parametrize("field, value, reason", [
    ("cpu_model", "Some Other CPU", "different CPU models"),
    ("threads", 8, "different thread counts (1 vs 8)"),
    ("isa_cap", "avx2", "different ISA caps (none vs avx2)"),
])
def test_not_compared_across_cpus_threads_or_isa_caps(two_timed_runs, tmp_path, field, value, reason):
    b = tmp_path / "b"
    shutil.copytree(two_timed_runs[1], b)
    _edit_perf(b, lambda record: _slower({**record, field: value}, 3.0))
    code, text = _compare(two_timed_runs[0], b)
    assert code == 0, text   # no regression claimed
    assert f"performance not compared for 3 item(s): {reason}" in text


def test_noise_rule():
    quiet = dict(STEADY)
    assert perf.regression("c", "t", quiet, _slower(quiet, 1.6)).regression
    assert not perf.regression("c", "t", quiet, _slower(quiet, 1.4)).regression
    spiky = {**_slower(quiet, 1.6), "min_ms": 1.0}   # medians up, minimums not: load, not OpenVINO
    assert "minimums" in perf.regression("c", "t", quiet, spiky).note
    wide = {**quiet, "q3_ms": 2.0}                   # A's spread reaches B's first quartile
    assert "spread" in perf.regression("c", "t", wide, _slower(quiet, 1.8)).note
    tiny = {key: value / 100 for key, value in quiet.items()}
    assert "call overhead" in perf.regression("c", "t", tiny, _slower(tiny, 3.0)).note
    assert math.isclose(perf.regression("c", "t", quiet, _slower(quiet, 2.0)).ratio, 2.0)


def test_ini_turns_it_on_and_bad_thread_counts_are_refused(pytester):
    make_suite(pytester)
    pytester.runpytest("-o", "conformance_perf=true", "--perf-budget", "0", "-k", "ok_c").assert_outcomes(passed=1)
    items = read_json(pytester.path / "reports" / "conformance.json")["items"]
    assert [item["perf"]["repeats"] for item in items] == [perf.PerfSettings.min_repeats]   # budget 0: the minimum
    refused = pytester.runpytest("--perf", "-o", "conformance_perf_threads=two")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    assert "conformance_perf_threads must be a whole number of at least 1 (got 'two')" in refused.stderr.str()
