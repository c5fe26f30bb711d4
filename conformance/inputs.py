"""Deterministic, seeded input tensors for a case.

The default fill is small nonzero integers (``[-3, 3]``, ``[1, 3]`` for unsigned
types; no zeros, so every tap of every output matters and a reference is never
mostly zeros for lack of products; small outputs are redrawn from derived seeds
if sums cancel) with a kernel *density* chosen so that every partial sum of every
output element is exactly representable in the narrowest type it passes
through (the exact-fill rule, after benchdnn):

    |partial sum| <= sum over nonzero kernel taps of |x|*|w|
                  <= N * max|x| * max|w|  <=  LIMIT(type)

where N is the number of nonzero kernel weights feeding one output channel
and LIMIT is 2**p for a float type with a p-bit significand (every integer of
magnitude <= 2**p is a float of that type: f32 2**24, f16 2**11, bf16 2**8)
or the largest magnitude of an integer type (i8 127, u8 255, ...). When the
kernel has more taps per output channel than ``N_max = LIMIT // (max|x| *
max|w|)``, all but ``N_max`` of them are zeroed (seeded positions). For f32 and
realistic shapes N_max (1.8M) never binds: the fill is dense. Then a run that
differs from the float64 oracle at all is wrong, not rounded (compare.py's
exact mode).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import ops
from .case import Case
# numpy holder per IR element type (element_types.TABLE); bf16 has no numpy dtype: float32 arrays
# whose values are all bf16 numbers (render.py writes the upper 16 bits).
from .element_types import (INTEGER_RANGE, NUMPY_DTYPES, SIGNIFICAND_BITS, default_integer_range,  # noqa: F401
                            exact_limit, exact_taps_limit, fill_integer_range, round_to_bf16, to_element_type)  # (re-exported)



@dataclass(frozen=True)
class Inputs:
    """The op's tensors, in the spec's layouts, as the IR element type (bf16: float32 holder).

    ``op_output``: the op's output on exactly these tensors when the draw computed it (the
    cancellation check of ``make_inputs``, by the oracle's own ``taps.apply_op`` and dtype rule);
    the oracle uses it instead of computing it again. Never set it for other tensors: an
    ``Inputs`` built from changed arrays is a new one, without it."""

    data: np.ndarray
    kernel: np.ndarray
    op_output: np.ndarray | None = field(default=None, compare=False, repr=False)




def integer_range(case: Case) -> tuple[int, int]:
    """The inclusive integer fill range of ``case`` (``fill_range``, else by element type)."""
    return fill_integer_range(case.fill_range, case.element_type)


def taps_per_output_channel(case: Case) -> int:
    """Kernel weights that can feed one output channel: C_IN per group x kernel volume."""
    return ops.get(case.op).taps_per_output_channel(case.kernel_shape)


def max_nonzero_taps(case: Case) -> int:
    """N_max of the exact-fill rule for ``case``: nonzero kernel weights allowed per output channel.

    The limit is the narrowest of the element type and the inference precisions
    the case declares, so the fill stays exact under every one of them.
    """
    limit = exact_taps_limit(integer_range(case), (case.element_type, *case.precisions))
    return taps_per_output_channel(case) if limit is None else limit


# The default integer fill is redrawn (seeds (seed, 1), (seed, 2), ...) while its reference would be
# untrustworthy (compare.sparse_reference: most reached outputs 0 by cancellation), for outputs up to
# this many elements; larger outputs have too many elements for non-zero draws to cancel in most.
TRUST_CHECKED_OUTPUT_ELEMENTS = 1 << 16
REDRAWS = 32


def make_inputs(case: Case) -> Inputs:
    """Inputs for ``case``, a pure function of its seed, fill, shapes and element type.

    The default fill (``fill: integers`` without ``fill_range``) draws no zeros, so
    every product of a reached output element is nonzero; where sums could still
    cancel to a mostly-zero (untrustworthy) reference, it is redrawn from derived
    seeds, so every case's reference is trustworthy whatever its id (and seed).
    """
    return settled(case, first_draw(case))


def first_draw(case: Case) -> Inputs:
    """The first draw of ``case``'s fill (from its seed): what ``make_inputs`` returns unless that
    draw cancels. Needs no torch, so a batch can be rendered and compiled with it before torch is
    imported; ``settled`` then says whether it stands."""
    return _draw(case, case.seed)


def settled(case: Case, drawn: Inputs) -> Inputs:
    """``make_inputs(case)``, given ``drawn = first_draw(case)``: ``drawn``'s own arrays (with the
    op's output the check computed) when that draw stands, new arrays when it was redrawn
    (``redrawn``). The check needs torch."""
    if not _redrawn_until_trustworthy(case):
        return drawn
    inputs = drawn
    for attempt in range(1, REDRAWS + 1):
        output = _op_output(case, inputs)
        if not _cancels(case, output):
            return Inputs(inputs.data, inputs.kernel, output)
        inputs = _draw(case, [case.seed, attempt])
    return inputs


def redrawn(drawn: Inputs, inputs: Inputs) -> bool:
    """True when ``settled`` replaced the first draw ``drawn`` (so ``inputs`` holds other arrays)."""
    return inputs.data is not drawn.data or inputs.kernel is not drawn.kernel


def inference_inputs(case: Case, first: Inputs | None = None) -> tuple[Inputs, ...]:
    """The inputs of every inference of ``case``, in order: ``first`` (``make_inputs(case)`` when not
    given) for a static case; for a dynamic-shape case one per ``infer_shapes`` entry, that shape's
    data with ``first``'s kernel (one kernel for the whole sequence: it is in the IR)."""
    first = first if first is not None else make_inputs(case)
    if not case.dynamic:
        return (first,)
    return tuple(Inputs(make_inputs(case.at_data_shape(shape)).data, first.kernel) for shape in case.infer_shapes)


def _redrawn_until_trustworthy(case: Case) -> bool:
    """The default integer fill of a static case small enough to check (and no stated sparse output)."""
    if case.fill != "integers" or case.fill_range is not None or case.dynamic:
        return False
    if case.sparse_output_reason is not None:
        return False
    return int(np.prod(case.geometry().output_shape)) <= TRUST_CHECKED_OUTPUT_ELEMENTS


def fill_cancels(case: Case, inputs: Inputs) -> bool:
    """True when more than ``compare.SPARSE_ZERO_FRACTION`` of the output elements kernel taps
    reach are 0 for these inputs: the reference the trust check (``api.trust_problem``) refuses."""
    return _cancels(case, _op_output(case, inputs))


def _op_output(case: Case, inputs: Inputs) -> np.ndarray:
    """The op's output on ``inputs`` as the oracle computes it (``taps.apply_op``, in float32 where
    that is exact, NNPACK off)."""
    import torch   # here, not at module level: see oracle.py

    from .taps import apply_op, exact_algorithms, exact_dtype
    numpy_dtype = np.float32 if exact_dtype(case, inputs.data, inputs.kernel) == torch.float32 else np.float64
    with torch.no_grad(), exact_algorithms():
        return apply_op(case, torch.from_numpy(inputs.data.astype(numpy_dtype)),
                        torch.from_numpy(inputs.kernel.astype(numpy_dtype))).numpy()


def _cancels(case: Case, output: np.ndarray) -> bool:
    from .compare import SPARSE_ZERO_FRACTION
    from .taps import reached
    zeros = output == 0
    if not zeros.any():   # the usual draw: no cancellation, no need for the reachability convolution
        return False
    mask = np.broadcast_to(reached(case), output.shape)
    return int(np.count_nonzero(zeros & mask)) > SPARSE_ZERO_FRACTION * int(np.count_nonzero(mask))


def _draw(case: Case, seed) -> Inputs:
    """One draw of ``case``'s fill from ``seed`` (an int, or a list for derived seeds)."""
    rng = np.random.default_rng(seed)
    dtype = NUMPY_DTYPES[case.element_type]
    if case.fill == "integers":
        low, high = integer_range(case)
        if case.fill_range is None:   # the default fill: nonzero values only
            data = _nonzero_integers(rng, low, high, case.data_shape)
            kernel = _nonzero_integers(rng, low, high, case.kernel_shape)
        else:
            draw = np.int8 if -128 <= low and high <= 127 else np.int64
            data = rng.integers(low, high + 1, size=case.data_shape, dtype=draw)
            kernel = rng.integers(low, high + 1, size=case.kernel_shape, dtype=draw)
        kernel = _sparsify(case, kernel, rng)
        return Inputs(data.astype(dtype), kernel.astype(dtype))
    data = rng.uniform(-1.0, 1.0, size=case.data_shape)
    kernel = rng.uniform(-1.0, 1.0, size=case.kernel_shape)
    return Inputs(to_element_type(data, case.element_type), to_element_type(kernel, case.element_type))


def _nonzero_integers(rng: np.random.Generator, low: int, high: int, shape) -> np.ndarray:
    """Integers drawn uniformly from ``[low, high]`` without 0 (int8: the default range is small)."""
    values = np.array([v for v in range(low, high + 1) if v != 0], dtype=np.int8)
    return values[rng.integers(0, len(values), size=shape)]


def _sparsify(case: Case, kernel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Zero all but ``max_nonzero_taps`` weights of every output channel (the exact-fill rule)."""
    keep = max_nonzero_taps(case)
    taps = taps_per_output_channel(case)
    if keep >= taps:
        return kernel
    if keep < 1:
        raise ValueError(f"{case.id}: fill range {integer_range(case)} is too wide for exact sums in "
                         f"{case.element_type}: one product can exceed {exact_limit(case.element_type)}")
    def sparsify(channels: np.ndarray) -> np.ndarray:   # (output channels, taps feeding each)
        channels = channels.copy()
        for row in channels:
            row[rng.permutation(taps)[keep:]] = 0
        return channels

    return ops.get(case.op).per_output_channel(kernel, sparsify)


