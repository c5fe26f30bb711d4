"""The PyTorch oracle: what the spec says the output is, in float64.

GroupConvolution: pad the input with the spec's effective pads (F.pad, which
also crops for negative pads), then a grouped convolution with no padding.
BackpropData: the full, uncropped grouped transposed convolution, then the
spec's pads cropped from (and output_padding appended to) the result.
Pads and output shape come from ``shapes`` via ``Case.geometry()``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import numpy as np

from . import shapes
from .case import SLAB_ELEMENTS, STREAM_THRESHOLD_ELEMENTS, Case, streamed  # noqa: F401 (re-exported)
from .inputs import Inputs

if TYPE_CHECKING:  # annotations only
    import torch

# torch is imported where it is first used, not here: importing it takes ~1 s, and the
# pytest plugin (so the xdist controller, ``--collect-only`` and every pytest run of
# this repository, harness tests included) imports this module without computing anything.


def _conv(rank: int):
    import torch.nn.functional as F
    return (F.conv1d, F.conv2d, F.conv3d)[rank - 1]


def _conv_transpose(rank: int):
    import torch.nn.functional as F
    return (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[rank - 1]


def _pad(tensor, pad: list[int]):
    import torch.nn.functional as F
    return F.pad(tensor, pad)


@dataclass(frozen=True)
class Reference:
    """The spec's output and, per element, the sum of |products| that formed it."""

    output: np.ndarray          # float64, the spec's output
    magnitude: np.ndarray       # float64, (|data| op |kernel|): scales rounding-error bounds
    geometry: shapes.Geometry
    seconds: float = 0.0        # time it took to compute


def _torch_pad(begin, end) -> list[int]:
    """F.pad wants (last_begin, last_end, ..., first_begin, first_end)."""
    pad: list[int] = []
    for b, e in zip(reversed(begin), reversed(end)):
        pad += [b, e]
    return pad


def apply_op(case: Case, data: torch.Tensor, kernel: torch.Tensor,
             geometry: shapes.Geometry | None = None) -> torch.Tensor:
    """Compute ``case``'s op on float64 torch tensors in the spec's layouts."""
    geometry = geometry or case.geometry()
    rank = case.spatial_rank
    groups = geometry.groups
    if case.op == shapes.GROUP_CONVOLUTION:
        # [G, C_OUT, C_IN, k...] -> torch's [G*C_OUT, C_IN, k...]
        weight = kernel.reshape((groups * geometry.out_channels_per_group,) + tuple(kernel.shape[2:]))
        padded = _pad(data, _torch_pad(geometry.pads_begin, geometry.pads_end))
        return _conv(rank)(padded, weight, stride=case.strides, dilation=case.dilations, groups=groups)
    # [G, C_IN, C_OUT, k...] -> torch's [G*C_IN, C_OUT, k...]
    weight = kernel.reshape((groups * geometry.in_channels_per_group,) + tuple(kernel.shape[2:]))
    full = _conv_transpose(rank)(data, weight, stride=case.strides, dilation=case.dilations, groups=groups)
    output_padding = case.output_padding or (0,) * rank
    # Crop pads_begin; crop pads_end but give back output_padding zeros/values at the end.
    crop_end = [pad - extra for pad, extra in zip(geometry.pads_end, output_padding)]
    return _pad(full, _torch_pad([-b for b in geometry.pads_begin], [-c for c in crop_end]))


def reference(case: Case, inputs: Inputs) -> Reference:
    """The spec's output for ``inputs`` plus the |product| sums used by tolerances."""
    import torch
    started = time.perf_counter()
    geometry = case.geometry()
    with torch.no_grad():
        data = torch.from_numpy(inputs.data.astype(np.float64))
        kernel = torch.from_numpy(inputs.kernel.astype(np.float64))
        output = apply_op(case, data, kernel, geometry).numpy()
        magnitude = apply_op(case, data.abs(), kernel.abs(), geometry).numpy()
    if output.shape != geometry.output_shape:
        raise AssertionError(f"oracle bug: torch gave {output.shape}, the spec formula {geometry.output_shape}")
    return Reference(output, magnitude, geometry, time.perf_counter() - started)


# --- the streaming path: slabs of output planes --------------------------------
#
# Above ``case.STREAM_THRESHOLD_ELEMENTS`` output elements a whole float64 oracle
# (output + magnitude, 16 bytes per element) would rival what OpenVINO itself
# needs (the spec's 3D BackpropData example: 715M elements, 11 GB), so the
# oracle is computed in slabs of planes along the first spatial axis, each from
# its own input halo, and compared slab by slab (``compare.StreamingComparison``).
# Every slab is the same arithmetic as the whole-tensor path on the same values,
# so verdicts are identical (tests/test_streaming.py checks that with tiny slabs).

FLOAT32_EXACT_LIMIT = 1 << 24         # every integer of magnitude <= 2**24 is a float32


@dataclass(frozen=True)
class Slab:
    """Output planes ``start:stop`` along the first spatial axis (axis 2)."""

    start: int
    stop: int
    output: np.ndarray        # float32 only when provably exact (see ``oracle_dtype``), else float64
    magnitude: np.ndarray
    seconds: float            # time spent computing this slab


def _integer_valued_max(array: np.ndarray, chunk: int = 1 << 22) -> float | None:
    """max |array| if every value is an integer, else None (chunked: no full-size temporaries)."""
    flat = array.reshape(-1)
    largest = 0.0
    for begin in range(0, flat.size, chunk):
        part = flat[begin:begin + chunk]
        if not np.array_equal(np.rint(part), part):
            return None
        if part.size:
            largest = max(largest, float(np.max(np.abs(part))))
    return largest


def oracle_dtype(case: Case, inputs: Inputs) -> torch.dtype:
    """float32 when float32 arithmetic is provably exact for these inputs, else float64.

    With integer-valued data and kernel, every product and every partial sum
    (in any order) of output and magnitude is an integer bounded by
    ``max|x| * max|w| * K`` (K = products per output element). When that bound
    is below 2**24, each of them is a float32 exactly, so a float32 convolution
    returns the float64 result bit for bit, at a fraction of the time. Anything
    else (e.g. ``fill: uniform``) keeps float64. torch must not downconvert
    float32 convolutions (TF32/bf16 math modes): checked, else float64.
    """
    import torch
    fp32_mode = getattr(getattr(torch.backends.mkldnn, "conv", None), "fp32_precision", "none")
    if fp32_mode not in ("none", "ieee"):
        return torch.float64
    data_max = _integer_valued_max(inputs.data)
    kernel_max = _integer_valued_max(inputs.kernel)
    if data_max is None or kernel_max is None:
        return torch.float64
    bound = data_max * kernel_max * case.geometry().accumulation_length
    return torch.float32 if bound < FLOAT32_EXACT_LIMIT else torch.float64


def slab_planes(case: Case, elements: int = SLAB_ELEMENTS) -> int:
    """Planes per slab so that one slab holds about ``elements`` output elements."""
    shape = case.geometry().output_shape
    per_plane = math.prod(shape[:2]) * math.prod(shape[3:])
    return max(1, elements // max(per_plane, 1))


def _fast_layout(tensor: torch.Tensor) -> torch.Tensor:
    """channels-last for 3D float32: torch's oneDNN path, ~8x faster than its grouped NCDHW conv3d.

    Layout only: the same products and (for the exact float32 case) the same exact sums.
    """
    import torch
    if tensor.dim() == 5 and tensor.dtype == torch.float32:
        return tensor.contiguous(memory_format=torch.channels_last_3d)
    return tensor


def _group_convolution_slab(case, geometry, data, weight, start, stop):
    """Output planes [start, stop): the padded input rows they read, then the plain conv."""
    stride, dilation = case.strides[0], case.dilations[0]
    extent = shapes.dilated_kernel(case.kernel_shape[3], dilation)
    rows = data.shape[2]
    first = start * stride - geometry.pads_begin[0]               # input row of the first padded row read
    last = (stop - 1) * stride + extent - geometry.pads_begin[0]  # one past the last
    low, high = min(max(first, 0), rows), min(max(last, 0), rows)
    zeros_before = max(0, min(last, 0) - first)
    zeros_after = max(0, last - max(first, rows))
    part = data[:, :, low:high]
    pads_begin = (zeros_before,) + tuple(geometry.pads_begin[1:])
    pads_end = (zeros_after,) + tuple(geometry.pads_end[1:])
    padded = _fast_layout(_pad(part, _torch_pad(pads_begin, pads_end)))
    return _conv(case.spatial_rank)(padded, _fast_layout(weight), stride=case.strides,
                                    dilation=case.dilations, groups=geometry.groups).contiguous()


def _backprop_data_slab(case, geometry, data, weight, start, stop):
    """Output planes [start, stop): the input rows that reach them, then crop/pad as the whole path does."""
    stride, dilation = case.strides[0], case.dilations[0]
    extent = shapes.dilated_kernel(case.kernel_shape[3], dilation)
    rows = data.shape[2]
    full_first = start + geometry.pads_begin[0]   # in the uncropped transposed convolution
    full_last = stop + geometry.pads_begin[0]     # one past
    low = max(0, -(-(full_first - extent + 1) // stride))
    high = min(rows, (full_last - 1) // stride + 1)
    output_padding = case.output_padding or (0,) * case.spatial_rank
    crop_begin = [-b for b in geometry.pads_begin[1:]]
    crop_end = [extra - pad for pad, extra in zip(geometry.pads_end[1:], output_padding[1:])]
    if high <= low:  # no input row reaches these planes (only output_padding): zeros
        shape = list(geometry.output_shape)
        shape[2] = stop - start
        import torch
        return torch.zeros(shape, dtype=data.dtype)
    full = _conv_transpose(case.spatial_rank)(_fast_layout(data[:, :, low:high]), _fast_layout(weight),
                                              stride=case.strides, dilation=case.dilations,
                                              groups=geometry.groups).contiguous()
    origin = low * stride                          # full-tensor row of full[:, :, 0]
    depth_begin = origin - full_first              # negative: crop, positive: zeros
    depth_end = full_last - (origin + full.shape[2])
    return _pad(full, _torch_pad([depth_begin] + crop_begin, [depth_end] + crop_end))


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
    compute = _group_convolution_slab if case.op == shapes.GROUP_CONVOLUTION else _backprop_data_slab
    depth = geometry.output_shape[2]
    data = torch.from_numpy(inputs.data)   # shared memory; each slab converts its own rows
    with torch.no_grad():
        kernel = torch.from_numpy(inputs.kernel.astype(numpy_dtype))
        kernel_abs = kernel.abs()
        rows = ((geometry.groups * geometry.out_channels_per_group,) if case.op == shapes.GROUP_CONVOLUTION
                else (geometry.groups * geometry.in_channels_per_group,))
        weight = kernel.reshape(rows + tuple(kernel.shape[2:]))
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
            yield Slab(start, stop, output.numpy(), magnitude.numpy(), time.perf_counter() - slab_started)


class _HaloView:
    """The input, converted to the oracle's dtype only for the rows a slab slices out of it."""

    def __init__(self, data: torch.Tensor, dtype: torch.dtype, absolute: bool = False):
        self.data, self.dtype, self.absolute = data, dtype, absolute
        self.shape = data.shape

    def __getitem__(self, index):
        part = self.data[index].to(self.dtype)   # no copy when already dtype: never modify in place
        return part.abs() if self.absolute else part
