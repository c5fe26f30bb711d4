"""The PyTorch oracle: what the spec says the output is, in float64.

Each op's own computation (``window`` and ``slab``) lives in its module under ``ops/``; this
module drives them (whole or by slabs) and picks the arithmetic. GroupConvolution: the
windows of the input padded with the spec's effective pads, gathered by index (a negative pad crops), then a grouped convolution with
no padding. BackpropData: the uncropped grouped transposed convolution, then
the spec's window of it: ``pads_begin`` cropped, zeros wherever the window
reaches past the result (``output_padding`` of any size, an ``output_shape``
larger than the result). Pads and windows are indices, not torch padding, so
every configuration the spec allows is computed (torch's ``F.pad`` and
``output_padding`` have their own limits). Strides larger than the dilated
kernel are computed with the windows packed side by side (``window_stride``):
a stride of 2**40 costs nothing. Pads and output shape come from ``shapes`` via
``Case.geometry()``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import numpy as np

from . import ops, post_ops, shapes
from .ops.group_convolution import convolution_input_index  # noqa: F401 (re-exported)
from .ops.group_convolution_backprop_data import transposed_output_index  # noqa: F401
from .ops.torch_util import window_stride  # noqa: F401 (re-exported)
from .case import Case
from .memory import SLAB_ELEMENTS, STREAM_THRESHOLD_ELEMENTS, slab_planes, streamed  # noqa: F401 (re-exported)
from .inputs import Inputs
from .taps import FLOAT32_EXACT_LIMIT, ONE_THREAD_WORK, apply_op, exact_algorithms, exact_dtype, torch_weight  # noqa: F401 (re-exported)

if TYPE_CHECKING:  # annotations only
    import torch

# torch is imported where it is first used, not here: importing it takes ~1 s, and the
# pytest plugin (so the xdist controller, ``--collect-only`` and every pytest run of
# this repository, harness tests included) imports this module without computing anything.


@dataclass(frozen=True)
class Reference:
    """The spec's output and, per element, the sum of |products| that formed it."""

    output: np.ndarray          # float64, the spec's output
    magnitude: np.ndarray       # float64, (|data| op |kernel|): scales rounding-error bounds
    geometry: shapes.Geometry
    seconds: float = 0.0        # time it took to compute
    op_output: np.ndarray | None = None   # the op's own output before the case's post-ops (None: no post-ops)


def reference(case: Case, inputs: Inputs) -> Reference:
    """The spec's output for ``inputs`` plus the |product| sums used by tolerances."""
    import torch
    started = time.perf_counter()
    geometry = case.geometry()
    # float32 where it is exact (``oracle_dtype``): the same values as float64, and torch's grouped and
    # depthwise float64 convolutions have no fast path (up to 20x slower: docs/performance.md).
    dtype = oracle_dtype(case, inputs)
    numpy_dtype = np.float32 if dtype == torch.float32 else np.float64
    data, kernel = inputs.data.astype(numpy_dtype), inputs.kernel.astype(numpy_dtype)
    with torch.no_grad(), exact_algorithms():
        # The draw's cancellation check computed it the same way (``Inputs.op_output``).
        op_output = inputs.op_output if inputs.op_output is not None else \
            apply_op(case, torch.from_numpy(data), torch.from_numpy(kernel), geometry).numpy()
        # |x| by numpy: torch's abs runs on all its threads, which wait at barriers on a loaded machine.
        magnitude = apply_op(case, torch.from_numpy(np.abs(data)), torch.from_numpy(np.abs(kernel)), geometry).numpy()
    op_output, magnitude = np.asarray(op_output, dtype=np.float64), np.asarray(magnitude, dtype=np.float64)
    if op_output.shape != geometry.output_shape:
        raise AssertionError(f"oracle bug: torch gave {op_output.shape}, the spec formula {geometry.output_shape}")
    output, magnitude = post_ops.apply(case, op_output, magnitude)
    return Reference(output, magnitude, geometry, time.perf_counter() - started,
                     op_output if case.post_ops else None)


# --- the streaming path: slabs of output planes --------------------------------
#
# Above ``case.STREAM_THRESHOLD_ELEMENTS`` output elements a whole float64 oracle
# (output + magnitude, 16 bytes per element) would rival what OpenVINO itself
# needs (the spec's 3D BackpropData example: 715M elements, 11 GB), so the
# oracle is computed in slabs of planes along the first spatial axis, each from
# its own input halo, and compared slab by slab (``compare.StreamingComparison``).
# Every slab is the same arithmetic as the whole-tensor path on the same values,
# so verdicts are identical (tests/test_streaming.py checks that with tiny slabs).

@dataclass(frozen=True)
class Slab:
    """Output planes ``start:stop`` along the first spatial axis (axis 2)."""

    start: int
    stop: int
    output: np.ndarray        # float32 only when provably exact (see ``oracle_dtype``), else float64
    magnitude: np.ndarray
    seconds: float            # time spent computing this slab


def oracle_dtype(case: Case, inputs: Inputs) -> torch.dtype:
    """The oracle's dtype for ``inputs``: ``taps.exact_dtype`` (float32 only where provably exact)."""
    return exact_dtype(case, inputs.data, inputs.kernel)


def reference_slabs(case: Case, inputs: Inputs, planes: int | None = None,
                    dtype: torch.dtype | None = None) -> Iterator[Slab]:
    """The spec's output and magnitude, slab by slab along the first spatial axis.

    ``planes`` per slab defaults to ``slab_planes(case)``; ``dtype`` to
    ``oracle_dtype``. Only the slab's input halo is converted to ``dtype``.
    """
    import torch
    geometry = case.geometry()
    planes = planes or slab_planes(case)
    dtype = dtype or oracle_dtype(case, inputs)
    numpy_dtype = np.float32 if dtype == torch.float32 else np.float64
    compute = ops.get(case.op).slab
    depth = geometry.output_shape[2]
    data = torch.from_numpy(inputs.data)   # shared memory; each slab converts its own rows
    with torch.no_grad(), exact_algorithms():
        kernel = torch.from_numpy(inputs.kernel.astype(numpy_dtype))
        kernel_abs = kernel.abs()
        weight = torch_weight(case, kernel)
        weight_abs = kernel_abs.reshape(weight.shape)
        for start in range(0, depth, planes):
            slab_started = time.perf_counter()
            stop = min(depth, start + planes)
            halo = _HaloView(data, dtype)
            output = compute(case, geometry, halo, weight, start, stop)
            magnitude = compute(case, geometry, _HaloView(data, dtype, absolute=True), weight_abs, start, stop)
            expected_shape = geometry.output_shape[:2] + (stop - start,) + geometry.output_shape[3:]
            if tuple(output.shape) != expected_shape:
                raise AssertionError(f"oracle bug: slab {start}:{stop} is {tuple(output.shape)}, "
                                     f"the spec formula says {expected_shape}")
            output, magnitude = post_ops.apply(case, output.numpy(), magnitude.numpy(), slice(start, stop))
            yield Slab(start, stop, output, magnitude, time.perf_counter() - slab_started)


class _HaloView:
    """The input, converted to the oracle's dtype only for the rows a slab slices out of it."""

    def __init__(self, data: torch.Tensor, dtype: torch.dtype, absolute: bool = False):
        self.data, self.dtype, self.absolute = data, dtype, absolute
        self.shape = data.shape

    def __getitem__(self, index):
        part = self.data[index].to(self.dtype)   # no copy when already dtype: never modify in place
        return part.abs() if self.absolute else part
