"""Stage 5: the oracle's output vs the device's -> ``Verdict``.

Per element (README "Tolerances"): ``|got - ref| <= atol_i + rtol * |ref|`` with

* ``atol_i = s * (2*u_in + K*u_acc) * M_i`` where ``M_i`` is the sum of
  ``|data|*|kernel|`` over the products forming element ``i`` (the oracle
  computes it), ``K`` the accumulation length (C_IN per group x kernel volume;
  for BackpropData the taps that can land on one output), ``u_acc`` the
  accumulator's unit roundoff (f32: oneDNN accumulates f32/bf16/f16
  convolutions in f32) and ``u_in`` the unit roundoff of the precision the op
  computed in (its rt_info ``runtimePrecision``), 0 when every input value is
  exactly representable there;
* ``rtol = s * sum of u(t)`` over the roundings of the result on its way out:
  the op's output precision (rt_info ``outputPrecisions``) and the IR element
  type, when narrower than the accumulator (at least ``u_acc``);
* ``s = 1`` unless a case overrides it with a written reason.

This is the classical dot-product error bound (Higham, Thm 3.1) with
``gamma_K ~ K*u``: rigorous for a correct kernel, so a wrong tap, pad or
group shows up as an error far larger than the bound.

**Exact mode** (tolerance 0): when every input is an integer representable in
the compute precision and ``max M_i`` is within the exact-integer limit of the
accumulator and of every output rounding (2**24 for f32, 2**8 for bf16, ...;
see ``inputs.py``), every partial sum is exact in any order, so the only
correct answer is the oracle's, bit for bit. Integer element types are always
compared exactly: the spec's result for integer T is the exact integer one.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .element_types import INTEGER_TYPES, SIGNIFICAND_BITS, UNIT_ROUNDOFF  # noqa: F401 (re-exported)

ACCUMULATOR = "f32"  # oneDNN/OpenVINO CPU accumulate f32/bf16/f16 convolutions in f32
SPARSE_ZERO_FRACTION = 0.5   # more zeros than this among the reached outputs: the fill is too sparse
MIN_REACHED_FRACTION = 0.1   # fewer outputs than this reached by any tap: the pads dominate


CHECK_CHUNK = 1 << 22   # elements per chunk of the whole-input checks below (no full-size temporaries)


def _chunks(array: np.ndarray):
    """``array`` flattened, in chunks: the spec's 3D examples have ~0.2G input elements,
    and one float64 temporary of them is 1.8 GB."""
    flat = np.asarray(array).reshape(-1)
    for begin in range(0, max(flat.size, 1), CHECK_CHUNK):
        yield flat[begin:begin + CHECK_CHUNK]


def max_abs(array: np.ndarray) -> float:
    """max |array| (0 for an empty one), chunked."""
    return max((float(np.max(np.abs(chunk), initial=0)) for chunk in _chunks(array)), default=0.0)


def integer_valued(array: np.ndarray) -> bool:
    """True if every value of ``array`` is an integer, chunked."""
    if np.asarray(array).dtype.kind in "iub":
        return True
    # rint of a float is exact in its own type: no float64 conversion needed.
    return all(np.array_equal(np.rint(chunk), chunk) for chunk in _chunks(array))


def representable(array: np.ndarray, precision: str) -> bool:
    """True if every value of ``array`` survives conversion to ``precision`` unchanged."""
    array = np.asarray(array)
    if array.dtype == np.float32 and precision in ("f32", "f64"):
        return True   # every float32 is a float32 (and a float64)
    if array.size > CHECK_CHUNK:
        return all(_representable(chunk, precision) for chunk in _chunks(array))
    return _representable(array, precision)


def _representable(array: np.ndarray, precision: str) -> bool:
    values = np.asarray(array)
    if precision == "f64" or values.dtype.kind in "iu" and precision in INTEGER_TYPES:
        return True
    if precision in INTEGER_TYPES:
        return bool(np.array_equal(np.rint(values), values))
    values = values.astype(np.float64)
    if precision == "f32":
        return bool(np.array_equal(values.astype(np.float32).astype(np.float64), values))
    if precision == "f16":
        return bool(np.array_equal(values.astype(np.float16).astype(np.float64), values))
    if precision == "bf16":
        as32 = values.astype(np.float32)
        return bool(np.array_equal(as32.astype(np.float64), values) and np.all((as32.view(np.uint32) & 0xFFFF) == 0))
    raise ValueError(f"unknown precision {precision!r}")


def exact_integer_limit(precision: str) -> float:
    """Every integer of magnitude <= this is exact in ``precision`` (2**p for a p-bit significand)."""
    if precision in INTEGER_TYPES:
        info = np.iinfo(np.dtype({"i": "int", "u": "uint"}[precision[0]] + precision[1:]))
        return float(info.max) if info.min == 0 else float(min(-int(info.min), int(info.max)))
    return float(2 ** SIGNIFICAND_BITS[precision])


@dataclass(frozen=True)
class Tolerance:
    """The comparison bound for one item, and where its numbers came from."""

    precision: str                      # what the op computed in (runtimePrecision, else the hint)
    accumulation_length: int
    inputs_exact: bool
    rtol: float
    atol_scale: float                   # atol_i = atol_scale * M_i
    exact: bool = False                 # exact mode: |got - ref| must be 0
    element_type: str = "f32"
    output_roundings: tuple[str, ...] = ()
    scale: float = 1.0                  # per-case override factor (with ``reason``)
    reason: str | None = None
    exact_limit: float = 0.0            # exact mode: max sum|x*w| allowed (2**p of the narrowest type)
    post_op_roundings: int = 0          # post-op Add/Multiply layers: + P*u(precision) (README "Tolerances")
    intermediate_roundings: int = 0     # post-op layers run as their own node: + R*rtol

    def describe(self) -> str:
        override = f"; x{self.scale:g} by case override: {self.reason}" if self.reason else ""
        if self.exact:
            if self.element_type in INTEGER_TYPES:
                why = "integer element type: exact integer arithmetic"
            else:
                outputs = "/".join(self.output_roundings) or ACCUMULATOR
                why = (f"exact mode: integer inputs and max sum|x*w| <= 2^{int(np.log2(self.exact_limit))}, "
                       f"so every partial sum is exact in the {ACCUMULATOR} accumulator and the {outputs} output")
            return (f"|got-ref| == 0 ({why}; computed in {self.precision}, element type {self.element_type}), "
                    f"K={self.accumulation_length}{override}")
        u_in = "0 (inputs exact)" if self.inputs_exact else f"u({self.precision})"
        roundings = "+".join(f"u({t})" for t in self.output_roundings) or f"u({ACCUMULATOR})"
        post = (f" + {self.post_op_roundings}*u({self.precision})" if self.post_op_roundings else "") + (
            f" + {self.intermediate_roundings}*rtol" if self.intermediate_roundings else "")
        terms = "sum|x*w| (post-ops: sum of |terms| after them)" if post else "sum|x*w|"
        return (f"|got-ref| <= atol + rtol*|ref|, rtol={self.rtol:.3g} = {roundings}, "
                f"atol = (2*{u_in} + K*u({ACCUMULATOR}){post})*{terms} = {self.atol_scale:.3g}*sum|x*w|, "
                f"K={self.accumulation_length}, computed in {self.precision}, element type "
                f"{self.element_type}{override}")


def tolerance_for(precision: str, accumulation_length: int, *arrays: np.ndarray,
                  element_type: str = "f32", output_precision: str | None = None,
                  magnitude_max: float | None = None, scale: float = 1.0,
                  reason: str | None = None, post_op_roundings: int = 0,
                  intermediate_roundings: int = 0) -> Tolerance:
    """Tolerance for a run that computed in ``precision`` over inputs ``arrays``.

    ``output_precision`` is the op node's output precision (rt_info), ``element_type``
    the IR's; ``magnitude_max`` (max over elements of sum|x*w|) enables exact mode.
    Post-ops (``post_ops.tolerance_terms``): ``post_op_roundings`` Add/Multiply layers, each one
    more rounding of every term in ``precision`` at worst (a Multiply folded into bf16 weights);
    ``intermediate_roundings`` post-op layers that ran as their own node, so their input was
    rounded to the output precision first (each at most rtol * the magnitude).
    """
    precision = precision.lower()
    if precision not in UNIT_ROUNDOFF and precision not in INTEGER_TYPES:
        raise ValueError(f"no unit roundoff known for precision {precision!r}")
    if element_type in INTEGER_TYPES:
        # The spec's result for integer T is the exact integer result (README "Tolerances").
        return Tolerance(precision, accumulation_length, True, 0.0, 0.0, exact=True,
                         element_type=element_type, scale=scale, reason=reason)
    if precision in INTEGER_TYPES:  # an integer kernel on float data: not a configuration OpenVINO picks
        raise ValueError(f"{element_type} model computed in {precision}")
    inputs_exact = all(representable(array, precision) for array in arrays)
    u_acc = UNIT_ROUNDOFF["f64"] if precision == "f64" else UNIT_ROUNDOFF[ACCUMULATOR]
    accumulator = "f64" if precision == "f64" else ACCUMULATOR
    roundings = tuple(dict.fromkeys(
        t for t in (_precision_or_none(output_precision) or precision, element_type)
        if UNIT_ROUNDOFF[t] > UNIT_ROUNDOFF[accumulator]))
    integers = all(integer_valued(a) for a in arrays)
    limit = min(exact_integer_limit(t) for t in (accumulator, *roundings))
    if integers and inputs_exact and magnitude_max is not None and magnitude_max <= limit:
        return Tolerance(precision, accumulation_length, True, 0.0, 0.0, exact=True, element_type=element_type,
                         output_roundings=roundings, scale=scale, reason=reason, exact_limit=limit)
    u_in = 0.0 if inputs_exact else UNIT_ROUNDOFF[precision]
    rtol = max(u_acc, sum(UNIT_ROUNDOFF[t] for t in roundings))
    atol_scale = (2 * u_in + accumulation_length * u_acc + post_op_roundings * max(u_acc, UNIT_ROUNDOFF[precision])
                  + intermediate_roundings * rtol)
    return Tolerance(precision, accumulation_length, inputs_exact, scale * rtol, scale * atol_scale,
                     element_type=element_type, output_roundings=roundings, scale=scale, reason=reason,
                     post_op_roundings=post_op_roundings, intermediate_roundings=intermediate_roundings)


def _precision_or_none(value: str | None) -> str | None:
    """rt_info precision names (``f32``, ``bf16``, ``FP32``...) -> a key of UNIT_ROUNDOFF, if float."""
    if not value:
        return None
    name = value.split(",")[0].strip().lower()
    name = {"fp32": "f32", "fp16": "f16", "fp64": "f64"}.get(name, name)
    return name if name in UNIT_ROUNDOFF else None


def sparse_reference(expected: np.ndarray, reached: np.ndarray | None = None,
                     fill_threshold: float = SPARSE_ZERO_FRACTION,
                     reach_threshold: float = MIN_REACHED_FRACTION) -> str | None:
    """Why ``expected`` is too sparse to trust a pass (None when it is not).

    ``reached`` marks the output elements that at least one kernel tap reaches
    by the geometry alone (broadcastable to ``expected``); elsewhere the spec's
    output is 0 whatever the values (pads, stride gaps). Two ways to be degenerate:

    * the fill is too sparse: more than ``fill_threshold`` of the reached
      elements are 0 (zero inputs or cancellation), so the arithmetic is barely
      exercised;
    * the geometry leaves almost nothing: fewer than ``reach_threshold`` of the
      elements are reached (huge pads), so the output is mostly the pads' zeros.

    Stride gaps alone (BackpropData with stride > kernel) are not degenerate:
    the device must produce those zeros, and the reached elements are checked.
    """
    total = int(expected.size)
    if total == 0:
        return None
    mask = np.ones(expected.shape, dtype=bool) if reached is None else np.broadcast_to(reached, expected.shape)
    reached_count = int(np.count_nonzero(mask))
    zeros_reached = int(np.count_nonzero((expected == 0) & mask))
    advice = "Use a denser fill or smaller pads, or state why in 'allow_sparse_output: <reason>'."
    if reached_count < reach_threshold * total:
        return (f"untrustworthy reference: only {reached_count} of {total} output elements "
                f"({100.0 * reached_count / total:.3g}%) are reached by any kernel tap; the rest are the "
                f"pads' zeros, which a device returning zeros would also match. {advice}")
    if zeros_reached > fill_threshold * reached_count:
        return (f"untrustworthy reference: {zeros_reached} of the {reached_count} output elements that kernel "
                f"taps reach ({100.0 * zeros_reached / reached_count:.3g}%) are 0 (zero inputs or "
                f"cancellation: the fill is too sparse), which a device returning zeros would also match. {advice}")
    return None


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
                f"{list(index)}: {expected:.10g} -> {actual:.10g}" for index, expected, actual in self.first_mismatches))
        lines.append(f"tolerance: {self.tolerance.describe()}; largest atol here {self.max_atol:.3g}")
        return "\n".join(lines)


def _bounds(tolerance: Tolerance, expected: np.ndarray, magnitude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per element: (atol, atol + rtol*|expected|). Shared by both comparison paths."""
    atol = tolerance.atol_scale * magnitude
    return atol, atol + tolerance.rtol * np.abs(expected)


def tolerance_bound(expected: np.ndarray, magnitude: np.ndarray, tolerance: Tolerance) -> np.ndarray:
    """The per-element bound ``atol_i + rtol*|ref_i|`` that ``compare`` holds ``|got - ref|`` to
    (what result and repro bundles store as ``bound``)."""
    return _bounds(tolerance, expected, magnitude)[1]


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
    # The usual output has no NaN (max is NaN only if some element is) and, when it passes in exact
    # mode, no error at all: then every relative error is 0 and nothing is listed, without the
    # whole-array temporaries below (the same figures either way).
    scored = np.where(np.isnan(error), np.inf, error) if np.isnan(error.max()) else error
    flat = int(np.argmax(scored))
    worst = tuple(int(i) for i in np.unravel_index(flat, expected.shape))
    max_relative = 0.0
    if scored.flat[flat] != 0:
        with np.errstate(divide="ignore", invalid="ignore"):
            max_relative = float(np.max(np.where(expected != 0, scored / np.abs(expected),
                                                 np.where(scored == 0, 0.0, np.inf))))
    first = () if mismatches == 0 else tuple(
        (tuple(int(i) for i in index), float(expected[tuple(index)]), float(got[tuple(index)]))
        for index in np.argwhere(bad)[:listed])
    return Verdict(
        passed=mismatches == 0, expected_shape=expected_shape, actual_shape=actual_shape,
        tolerance=tolerance, total=total, mismatches=mismatches,
        max_abs_error=float(scored.flat[flat]), max_rel_error=max_relative,
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
