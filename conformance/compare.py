"""Stage 5: the oracle's output vs the device's -> ``Verdict``.

Per element: ``|got - ref| <= atol_i + rtol * |ref|`` with

* ``rtol = u_out``: rounding of the result to the inference precision;
* ``atol_i = (2*u_in + K*u_acc) * M_i`` where ``M_i`` is the sum of
  ``|data|*|kernel|`` over the products forming element ``i`` (the oracle
  computes it), ``K`` the accumulation length (C_IN per group x kernel volume),
  ``u_acc`` the f32 accumulator's unit roundoff and ``u_in`` the unit roundoff
  of converting inputs to the inference precision (0 when every input value
  is exactly representable there, e.g. small integers).

This is the classical dot-product error bound (Higham, Thm 3.1) with
``gamma_K ~ K*u``: rigorous for a correct kernel, so a wrong tap, pad or
group shows up as an error far larger than the bound.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

UNIT_ROUNDOFF = {"f64": 2.0 ** -53, "f32": 2.0 ** -24, "f16": 2.0 ** -11, "bf16": 2.0 ** -8}
ACCUMULATOR = "f32"  # oneDNN/OpenVINO CPU accumulate f32/bf16/f16 convolutions in f32


def representable(array: np.ndarray, precision: str) -> bool:
    """True if every value of ``array`` survives conversion to ``precision`` unchanged."""
    values = np.asarray(array, dtype=np.float32)
    if precision == "f32" or precision == "f64":
        return True
    if precision == "f16":
        return bool(np.array_equal(values.astype(np.float16).astype(np.float32), values))
    if precision == "bf16":
        return bool(np.all((values.view(np.uint32) & 0xFFFF) == 0))
    raise ValueError(f"unknown precision {precision!r}")


@dataclass(frozen=True)
class Tolerance:
    """The comparison bound for one item, and where its numbers came from."""

    precision: str
    accumulation_length: int
    inputs_exact: bool
    rtol: float
    atol_scale: float      # atol_i = atol_scale * M_i

    def describe(self) -> str:
        u_in = "0 (inputs exact)" if self.inputs_exact else f"u({self.precision})"
        return (f"|got-ref| <= atol + rtol*|ref|, rtol={self.rtol:.3g} = u({self.precision}), "
                f"atol = (2*{u_in} + K*u({ACCUMULATOR}))*sum|x*w| = {self.atol_scale:.3g}*sum|x*w|, "
                f"K={self.accumulation_length}")


def tolerance_for(precision: str, accumulation_length: int, *arrays: np.ndarray) -> Tolerance:
    """Tolerance for a run at inference ``precision`` over inputs ``arrays``."""
    if precision not in UNIT_ROUNDOFF:
        raise ValueError(f"no unit roundoff known for precision {precision!r}")
    exact = all(representable(array, precision) for array in arrays)
    u_in = 0.0 if exact else UNIT_ROUNDOFF[precision]
    accumulator = UNIT_ROUNDOFF[ACCUMULATOR] if precision != "f64" else UNIT_ROUNDOFF["f64"]
    atol_scale = 2 * u_in + accumulation_length * accumulator
    return Tolerance(precision, accumulation_length, exact, UNIT_ROUNDOFF[precision], atol_scale)


@dataclass(frozen=True)
class Verdict:
    """Outcome of one comparison, with everything a failure message needs."""

    passed: bool
    expected_shape: tuple[int, ...]
    actual_shape: tuple[int, ...]
    tolerance: Tolerance
    total: int = 0
    mismatches: int = 0
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    worst_index: tuple[int, ...] | None = None
    worst_expected: float | None = None
    worst_actual: float | None = None
    worst_bound: float | None = None
    max_atol: float = 0.0
    first_mismatches: tuple[tuple[tuple[int, ...], float, float], ...] = ()

    @property
    def shape_ok(self) -> bool:
        return self.expected_shape == self.actual_shape

    def describe(self) -> str:
        """A few lines a person can act on: shape, counts, worst element, bound."""
        if not self.shape_ok:
            return (f"output shape mismatch: the spec says {list(self.expected_shape)}, "
                    f"the device returned {list(self.actual_shape)}")
        lines = [f"{self.mismatches} of {self.total} elements "
                 f"({100.0 * self.mismatches / max(self.total, 1):.3g}%) outside the tolerance"
                 if self.mismatches else f"all {self.total} elements within the tolerance"]
        if self.worst_index is not None:
            lines.append(f"max abs error {self.max_abs_error:.6g} at {list(self.worst_index)}: "
                         f"expected {self.worst_expected:.9g}, got {self.worst_actual:.9g}, "
                         f"allowed {self.worst_bound:.3g}; max rel error {self.max_rel_error:.3g}")
        if self.first_mismatches:
            lines.append("first mismatches (index: expected -> got): " + "; ".join(
                f"{list(index)}: {expected:.6g} -> {actual:.6g}" for index, expected, actual in self.first_mismatches))
        lines.append(f"tolerance: {self.tolerance.describe()}; largest atol here {self.max_atol:.3g}")
        return "\n".join(lines)


def _bounds(tolerance: Tolerance, expected: np.ndarray, magnitude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per element: (atol, atol + rtol*|expected|). Shared by both comparison paths."""
    atol = tolerance.atol_scale * magnitude
    return atol, atol + tolerance.rtol * np.abs(expected)


def compare(expected: np.ndarray, magnitude: np.ndarray, actual: np.ndarray, tolerance: Tolerance,
            listed: int = 5) -> Verdict:
    """Compare ``actual`` with the oracle's ``expected`` under ``tolerance``."""
    expected_shape, actual_shape = tuple(expected.shape), tuple(actual.shape)
    if expected_shape != actual_shape:
        return Verdict(False, expected_shape, actual_shape, tolerance)
    got = actual.astype(np.float64)
    error = np.abs(got - expected)
    atol, bound = _bounds(tolerance, expected, magnitude)
    bad = ~(error <= bound)  # NaN in the output counts as a mismatch
    mismatches = int(np.count_nonzero(bad))
    total = int(expected.size)
    if total == 0:
        return Verdict(True, expected_shape, actual_shape, tolerance)
    scored = np.where(np.isnan(error), np.inf, error)
    flat = int(np.argmax(scored))
    worst = tuple(int(i) for i in np.unravel_index(flat, expected.shape))
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(expected != 0, scored / np.abs(expected), np.where(scored == 0, 0.0, np.inf))
    first = tuple(
        (tuple(int(i) for i in index), float(expected[tuple(index)]), float(got[tuple(index)]))
        for index in np.argwhere(bad)[:listed])
    return Verdict(
        passed=mismatches == 0, expected_shape=expected_shape, actual_shape=actual_shape,
        tolerance=tolerance, total=total, mismatches=mismatches,
        max_abs_error=float(scored.flat[flat]), max_rel_error=float(np.max(relative)),
        worst_index=worst, worst_expected=float(expected[worst]), worst_actual=float(got[worst]),
        worst_bound=float(bound[worst]), max_atol=float(np.max(atol)), first_mismatches=first)


class StreamingComparison:
    """``compare`` for outputs too large to hold twice: fed slab by slab, same ``Verdict``.

    Slabs are cut along one axis (the oracle's planes, axis 2). Each slab is
    compared with the same per-element arithmetic as ``compare`` (in float64);
    the statistics are merged so that the result equals ``compare`` on the
    whole tensors: ties for the worst element go to the smallest flat (C-order)
    index, as ``np.argmax`` does, and ``first_mismatches`` are the first in C order.
    """

    def __init__(self, expected_shape: tuple[int, ...], actual_shape: tuple[int, ...], tolerance: Tolerance,
                 axis: int = 2, listed: int = 5):
        self.expected_shape, self.actual_shape = tuple(expected_shape), tuple(actual_shape)
        self.tolerance, self.axis, self.listed = tolerance, axis, listed
        self.covered = 0
        self.mismatches = 0
        self.max_abs_error = -1.0
        self.worst_flat: int | None = None
        self.worst: tuple | None = None     # (index, expected, actual, bound)
        self.max_rel_error = 0.0
        self.max_atol = 0.0
        self.first: list[tuple[int, tuple[int, ...], float, float]] = []   # (flat, index, expected, got)
        self.seconds = 0.0

    def add(self, start: int, expected: np.ndarray, magnitude: np.ndarray, actual: np.ndarray) -> None:
        """Compare one slab: planes ``start:start + expected.shape[axis]`` of the whole output."""
        started = time.perf_counter()
        self.covered += int(expected.size)
        if expected.size == 0:
            return
        offset = [0] * expected.ndim
        offset[self.axis] = start
        if np.array_equal(actual, expected):
            self._add_exact(offset, expected, magnitude)
        else:
            self._add_compared(offset, expected, magnitude, actual)
        self.seconds += time.perf_counter() - started

    def _add_exact(self, offset, expected, magnitude) -> None:
        """Every error is 0 (the usual passing slab): what ``compare`` would find, without its temporaries.

        No mismatch, relative error 0, the worst element is the first one
        (``np.argmax`` of zeros) and the largest atol is that of the largest
        magnitude (atol grows with the magnitude).
        """
        first = (0,) * expected.ndim
        reference = np.float64(expected[first])
        self._take_worst(0.0, first, offset, float(reference), float(reference),
                         float(_bounds(self.tolerance, reference, np.float64(magnitude[first]))[1]))
        largest = np.float64(np.max(magnitude))
        self.max_atol = max(self.max_atol, float(_bounds(self.tolerance, np.float64(0.0), largest)[0]))

    def _add_compared(self, offset, expected, magnitude, actual) -> None:
        """The element-wise statistics of ``compare`` on one slab, in float64."""
        expected = expected.astype(np.float64, copy=False)
        got = actual.astype(np.float64)
        error = np.subtract(got, expected)
        np.abs(error, out=error)
        atol, bound = _bounds(self.tolerance, expected, magnitude.astype(np.float64, copy=False))
        self.max_atol = max(self.max_atol, float(np.max(atol)))
        del atol
        bad = ~(error <= bound)   # NaN in the output counts as a mismatch
        slab_mismatches = int(np.count_nonzero(bad))
        self.mismatches += slab_mismatches
        error[np.isnan(error)] = np.inf
        local_flat = int(np.argmax(error))
        local = np.unravel_index(local_flat, expected.shape)
        self._take_worst(float(error.flat[local_flat]), local, offset, float(expected[local]),
                         float(got[local]), float(bound[local]))
        del bound
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = np.where(expected != 0, error / np.abs(expected), np.where(error == 0, 0.0, np.inf))
        self.max_rel_error = max(self.max_rel_error, float(np.max(relative)))
        if slab_mismatches:  # a later slab can hold earlier C-order indices (axis 2 is not the slowest)
            for index in np.argwhere(bad)[:self.listed]:
                position = self._whole(index, offset)
                self.first.append((int(np.ravel_multi_index(position, self.expected_shape)), position,
                                   float(expected[tuple(index)]), float(got[tuple(index)])))
            self.first = sorted(self.first)[:self.listed]

    @staticmethod
    def _whole(local, offset) -> tuple[int, ...]:
        return tuple(int(i) + o for i, o in zip(local, offset))

    def _take_worst(self, value, local, offset, expected, got, bound) -> None:
        """Keep the largest error; ties go to the smallest C-order index, as ``np.argmax``."""
        index = self._whole(local, offset)
        flat = int(np.ravel_multi_index(index, self.expected_shape))
        if value > self.max_abs_error or (value == self.max_abs_error and flat < self.worst_flat):
            self.max_abs_error, self.worst_flat = value, flat
            self.worst = (index, expected, got, bound)

    def verdict(self) -> Verdict:
        """The ``Verdict`` over every slab added; raises if the slabs did not cover the output."""
        tolerance = self.tolerance
        if self.expected_shape != self.actual_shape:
            return Verdict(False, self.expected_shape, self.actual_shape, tolerance)
        total = 1
        for dim in self.expected_shape:
            total *= dim
        if self.covered != total:
            raise ValueError(f"slabs covered {self.covered} of {total} elements")
        if total == 0:
            return Verdict(True, self.expected_shape, self.actual_shape, tolerance)
        index, worst_expected, worst_actual, worst_bound = self.worst
        return Verdict(
            passed=self.mismatches == 0, expected_shape=self.expected_shape, actual_shape=self.actual_shape,
            tolerance=tolerance, total=total, mismatches=self.mismatches,
            max_abs_error=self.max_abs_error, max_rel_error=self.max_rel_error,
            worst_index=index, worst_expected=worst_expected, worst_actual=worst_actual,
            worst_bound=worst_bound, max_atol=self.max_atol,
            first_mismatches=tuple((index, expected, got) for _, index, expected, got in self.first))
