"""The streaming path (oracle slabs + StreamingComparison) gives what the whole-tensor path gives.

Small cases with tiny slabs (1, 2, 3 planes) exercise every halo/crop edge:
pads larger than the kernel, strides, dilations, output_padding, output_shape,
batches and several groups (so a later slab holds earlier C-order indices).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conformance import oracle
from conformance.case import load_cases_text
from conformance.compare import UNIT_ROUNDOFF, StreamingComparison, compare, tolerance_for
from conformance.inputs import Inputs, make_inputs
from reporting_support import subprocess_project

GROUP_CONVOLUTION = """
op: GroupConvolution
defaults: {dilations: 1, auto_pad: explicit, strides: 1, pads_begin: 0, pads_end: 0}
cases:
  - {name: plain3d, data: [1, 4, 7, 6, 5], kernel: [2, 3, 2, 3, 3, 2], pads_begin: 1, pads_end: 1}
  - {name: strided, data: [2, 6, 11, 5], kernel: [3, 2, 2, 3, 2], strides: [3, 2], pads_begin: [2, 1], pads_end: [0, 1]}
  - {name: dilated, data: [1, 2, 13, 4], kernel: [2, 1, 1, 3, 2], dilations: [3, 1], pads_begin: [4, 0], pads_end: [5, 1]}
  - {name: big_pads, data: [1, 2, 3, 3], kernel: [1, 2, 2, 2, 2], pads_begin: [5, 1], pads_end: [6, 0]}
  - {name: same_lower, data: [1, 3, 9, 4], kernel: [3, 1, 1, 4, 3], strides: [2, 1], auto_pad: same_lower}
  - {name: conv1d, data: [2, 4, 17], kernel: [4, 2, 1, 5], strides: [2], pads_begin: [3], pads_end: [1]}
"""

BACKPROP_DATA = """
op: GroupConvolutionBackpropData
defaults: {dilations: 1, auto_pad: explicit, strides: 1, pads_begin: 0, pads_end: 0}
cases:
  - {name: spec_like, data: [1, 4, 6, 5, 4], kernel: [2, 2, 3, 3, 3, 3], strides: 2, pads_begin: 1, pads_end: 1}
  - {name: output_padding, data: [2, 2, 5, 4], kernel: [2, 1, 2, 3, 2], strides: [3, 2], pads_begin: [1, 0], pads_end: [1, 1], output_padding: [2, 1]}
  - {name: dilated, data: [1, 2, 6, 3], kernel: [1, 2, 1, 3, 2], strides: [2, 1], dilations: [2, 2], pads_begin: [3, 1], pads_end: [2, 0]}
  - {name: output_shape, data: [1, 2, 7, 4], kernel: [2, 1, 3, 4, 3], strides: [3, 1], output_shape: [17, 5], auto_pad: same_upper}
  - {name: conv1d, data: [1, 3, 9], kernel: [3, 1, 2, 4], strides: [4], pads_begin: [2], pads_end: [5], output_padding: [3]}
"""

CASES = load_cases_text(GROUP_CONVOLUTION, "gc.yaml") + load_cases_text(BACKPROP_DATA, "bd.yaml")
IDS = [case.id for case in CASES]


def _uniform(case) -> Inputs:
    rng = np.random.default_rng(7)
    return Inputs(rng.uniform(-1, 1, case.data_shape).astype(np.float32),
                  rng.uniform(-1, 1, case.kernel_shape).astype(np.float32))


def _joined(case, inputs, planes, dtype=None):
    slabs = list(oracle.reference_slabs(case, inputs, planes=planes, dtype=dtype))
    assert [slab.start for slab in slabs] == list(range(0, case.geometry().output_shape[2], planes))
    output = np.concatenate([slab.output for slab in slabs], axis=2)
    magnitude = np.concatenate([slab.magnitude for slab in slabs], axis=2)
    return output, magnitude


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("planes", [1, 2, 3, 1000])
def test_slabs_equal_the_whole_oracle_in_float64(case, planes):
    inputs = _uniform(case)
    whole = oracle.reference(case, inputs)
    output, magnitude = _joined(case, inputs, planes, torch.float64)
    assert output.shape == whole.output.shape
    # A slab and the whole tensor are different torch calls: on some CPUs torch picks different
    # algorithms (summation orders) for them, so float64 results may differ by a few ulps. Each is
    # within K*u64*sum|x*w| of the exact sum (the rounding analysis the tolerance uses), so the two
    # are within twice that of each other; a wrong halo or crop is off by a whole term instead.
    bound = 2 * case.geometry().accumulation_length * UNIT_ROUNDOFF["f64"] * whole.magnitude
    assert np.all(np.abs(output - whole.output) <= bound)
    assert np.all(np.abs(magnitude - whole.magnitude) <= bound)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_is_chosen_only_when_exact_and_then_equals_float64(case):
    integers = make_inputs(case)
    assert oracle.oracle_dtype(case, integers) == torch.float32
    assert oracle.oracle_dtype(case, _uniform(case)) == torch.float64
    whole = oracle.reference(case, integers)
    output, magnitude = _joined(case, integers, 2)
    assert output.dtype == np.float32
    np.testing.assert_array_equal(output.astype(np.float64), whole.output)
    np.testing.assert_array_equal(magnitude.astype(np.float64), whole.magnitude)


def test_float32_is_refused_when_sums_could_exceed_2_to_24():
    case = CASES[0]
    huge = Inputs(np.full(case.data_shape, 2.0 ** 20, np.float32), np.full(case.kernel_shape, 3.0, np.float32))
    assert oracle.oracle_dtype(case, huge) == torch.float64


def _streamed_verdict(case, inputs, actual, planes):
    whole = oracle.reference(case, inputs)
    tolerance = tolerance_for("f32", whole.geometry.accumulation_length, inputs.data, inputs.kernel)
    comparison = StreamingComparison(whole.output.shape, actual.shape, tolerance)
    for slab in oracle.reference_slabs(case, inputs, planes=planes):
        comparison.add(slab.start, slab.output, slab.magnitude, actual[:, :, slab.start:slab.stop])
    return compare(whole.output, whole.magnitude, actual, tolerance), comparison.verdict()


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("planes", [1, 3])
def test_streamed_verdict_equals_whole_verdict(case, planes):
    inputs = make_inputs(case)
    exact = oracle.reference(case, inputs).output.astype(np.float32)
    rng = np.random.default_rng(3)
    broken = exact.copy()
    flat = broken.reshape(-1)
    picks = rng.choice(flat.size, size=min(9, flat.size), replace=False)
    flat[picks] += rng.choice([-2.0, 0.5, 2.0], size=picks.size).astype(np.float32)  # ties in |error|
    flat[picks[0]] = np.nan
    tiny = exact + np.float32(1e-6) * (exact != 0)                                   # inside the bound
    for actual in (exact, broken, tiny):
        whole, streamed = _streamed_verdict(case, inputs, actual, planes)
        assert repr(streamed) == repr(whole)   # repr: NaN fields compare equal, floats exactly
    assert not _streamed_verdict(case, inputs, broken, planes)[1].passed


def test_streamed_shape_mismatch_and_incomplete_coverage():
    case = CASES[0]
    inputs = make_inputs(case)
    whole = oracle.reference(case, inputs)
    tolerance = tolerance_for("f32", 1, inputs.data, inputs.kernel)
    wrong = StreamingComparison(whole.output.shape, (1, 2, 3), tolerance)
    assert repr(wrong.verdict()) == repr(compare(whole.output, whole.magnitude, np.zeros((1, 2, 3)), tolerance))
    partial = StreamingComparison(whole.output.shape, whole.output.shape, tolerance)
    partial.add(0, whole.output[:, :, :1], whole.magnitude[:, :, :1], whole.output[:, :, :1])
    with pytest.raises(ValueError, match="covered"):
        partial.verdict()


def test_api_check_streams_on_request_with_progress_and_same_verdict(tmp_path):
    from conformance import api
    case = CASES[0]
    lines: list[str] = []
    target = api.Target("CPU", "f32")
    whole = api.check(case, target, tmp_path)
    streamed = api.check(case, target, tmp_path, stream=True, progress=lines.append)
    assert streamed.streamed and streamed.reference is None and not whole.streamed
    assert repr(streamed.verdict) == repr(whole.verdict)
    assert streamed.oracle_seconds > 0 and whole.oracle_seconds > 0
    assert lines and "OpenVINO compile + infer" in lines[0] and "planes 7/7 (100%)" in lines[-1]


def test_memory_budget_skips_items_with_the_estimate_and_keeps_the_others(pytester, monkeypatch):
    subprocess_project(pytester, monkeypatch, {
        "mixed.yaml": "op: GroupConvolution\ncases:\n  - {name: small, data: [1, 2, 5], kernel: [2, 1, 1, 3]}\n"
                      "  - {name: big, data: [1, 2, 9000], kernel: [2, 1, 1, 3]}\n"})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs", "--memory-budget=64KiB")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*needs about * (estimated: case.footprint_bytes), over the memory budget of 64 KiB*"])
