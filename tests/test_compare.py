"""compare.py: the verdict's numbers, the bound at its edge, and the failure message."""
from __future__ import annotations

import numpy as np
import pytest

from conformance.compare import UNIT_ROUNDOFF, compare, representable, tolerance_for

F32 = tolerance_for("f32", 9, np.ones(3, np.float32))


def test_tolerance_numbers():
    assert F32.inputs_exact and F32.rtol == 2.0 ** -24
    assert F32.atol_scale == pytest.approx(9 * 2.0 ** -24)      # 2*0 + K*u(f32)
    # Inputs not representable in bf16: 2*u(bf16) is added for the input conversion.
    bf16 = tolerance_for("bf16", 4, np.array([0.1], np.float32))
    assert not bf16.inputs_exact
    assert bf16.atol_scale == pytest.approx(2 * 2.0 ** -8 + 4 * 2.0 ** -24)
    assert representable(np.array([1.0, -3.0, 0.5], np.float32), "bf16")
    assert not representable(np.array([1.0 + 2.0 ** -12], np.float32), "bf16")
    with pytest.raises(ValueError):
        tolerance_for("f8", 1)


def test_equal_outputs_pass():
    expected = np.arange(6.0).reshape(1, 2, 3)
    verdict = compare(expected, np.abs(expected), expected.astype(np.float32), F32)
    assert verdict.passed and verdict.mismatches == 0 and verdict.total == 6
    assert verdict.max_abs_error == 0 and "all 6 elements within the tolerance" in verdict.describe()


def test_error_at_the_bound_passes_and_just_over_fails():
    expected = np.array([[[100.0]]])
    magnitude = np.array([[[200.0]]])
    bound = F32.atol_scale * 200.0 + F32.rtol * 100.0
    at_bound = compare(expected, magnitude, expected + bound, F32)
    assert at_bound.passed
    over = compare(expected, magnitude, expected + bound * 1.001, F32)
    assert not over.passed and over.mismatches == 1
    assert over.worst_bound == pytest.approx(bound)


def test_verdict_numbers_and_message():
    expected = np.zeros((1, 2, 2, 3))
    expected[0, 1, 1, 2] = 4.0
    magnitude = np.full(expected.shape, 10.0)
    actual = expected.copy()
    actual[0, 0, 0, 1] = 0.5          # one small error where the reference is 0
    actual[0, 1, 1, 2] = 1.0          # the largest error: expected 4, got 1
    verdict = compare(expected, magnitude, actual.astype(np.float32), F32)
    assert not verdict.passed
    assert (verdict.total, verdict.mismatches) == (12, 2)
    assert verdict.worst_index == (0, 1, 1, 2)
    assert (verdict.worst_expected, verdict.worst_actual, verdict.max_abs_error) == (4.0, 1.0, 3.0)
    assert verdict.max_rel_error == np.inf            # 0.5 where the reference is 0
    assert verdict.max_atol == pytest.approx(10 * F32.atol_scale)
    assert [index for index, _, _ in verdict.first_mismatches] == [(0, 0, 0, 1), (0, 1, 1, 2)]
    text = verdict.describe()
    assert "2 of 12 elements (16.7%) outside the tolerance" in text
    assert "max abs error 3 at [0, 1, 1, 2]: expected 4, got 1, allowed" in text
    assert "[0, 0, 0, 1]: 0 -> 0.5; [0, 1, 1, 2]: 4 -> 1" in text
    assert "tolerance: |got-ref| <= atol + rtol*|ref|, rtol=5.96e-08 = u(f32)" in text
    assert "K=9" in text


def test_shape_mismatch_is_its_own_failure():
    verdict = compare(np.zeros((1, 2, 5)), np.zeros((1, 2, 5)), np.zeros((1, 2, 4), np.float32), F32)
    assert not verdict.passed and not verdict.shape_ok
    assert verdict.describe() == "output shape mismatch: the spec says [1, 2, 5], the device returned [1, 2, 4]"


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_count_as_mismatches(bad):
    expected = np.ones((1, 1, 4))
    actual = np.ones((1, 1, 4), np.float32)
    actual[0, 0, 2] = bad
    verdict = compare(expected, np.ones_like(expected), actual, F32)
    assert not verdict.passed and verdict.mismatches == 1
    assert verdict.worst_index == (0, 0, 2)
    assert "1 of 4 elements" in verdict.describe()


def test_first_mismatches_are_limited():
    expected = np.zeros((1, 1, 20))
    verdict = compare(expected, expected, np.ones((1, 1, 20), np.float32), F32, listed=3)
    assert verdict.mismatches == 20 and len(verdict.first_mismatches) == 3


def test_unit_roundoffs():
    assert UNIT_ROUNDOFF == {"f64": 2.0 ** -53, "f32": 2.0 ** -24, "f16": 2.0 ** -11, "bf16": 2.0 ** -8}
