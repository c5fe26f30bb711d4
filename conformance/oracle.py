"""The PyTorch oracle: what the spec says the output is, in float64.

GroupConvolution: the windows of the input padded with the spec's effective
pads, gathered by index (a negative pad crops), then a grouped convolution with
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


@dataclass(frozen=True)
class Reference:
    """The spec's output and, per element, the sum of |products| that formed it."""

    output: np.ndarray          # float64, the spec's output
    magnitude: np.ndarray       # float64, (|data| op |kernel|): scales rounding-error bounds
    geometry: shapes.Geometry
    seconds: float = 0.0        # time it took to compute


def _contiguous_run(index: np.ndarray) -> tuple[int, int, int] | None:
    """(first position, first source row, length) when ``index`` is one run of consecutive rows
    with only -1 (zeros) around it, else None."""
    inside = np.flatnonzero(index >= 0)
    if not inside.size:
        return None
    first, row = int(inside[0]), int(index[inside[0]])
    if not np.array_equal(index[first:int(inside[-1]) + 1], np.arange(row, row + inside.size)):
        return None
    return first, row, int(inside.size)


def _take(tensor: torch.Tensor, indices: dict[int, np.ndarray]) -> torch.Tensor:
    """``tensor`` indexed along each ``axis`` by ``indices[axis]``; an index of -1 gives a zero there.

    This is how the oracle pads, crops and extends: explicitly, by index, so any
    pad the spec allows (larger than the tensor, negative, or reaching past the
    result) works, instead of torch's padding/output_padding limits. The usual
    case (every axis one run of rows with zeros around it) is one copy (into a
    zero-filled tensor where zeros are added), as ``F.pad`` would do.
    """
    import torch
    runs = {axis: _contiguous_run(index) for axis, index in indices.items()}
    if all(run is not None for run in runs.values()):
        source = tensor
        for axis, (_, row, length) in runs.items():
            source = source.narrow(axis, row, length)
        if all(length == indices[axis].size for axis, (_, _, length) in runs.items()):
            return source.contiguous()   # a crop: its own memory, so the uncropped tensor can go
        shape = list(tensor.shape)
        for axis, index in indices.items():
            shape[axis] = index.size
        result = tensor.new_zeros(shape)
        target = result
        for axis, (first, _, length) in runs.items():
            target = target.narrow(axis, first, length)
        target.copy_(source)
        return result
    for axis, index in indices.items():   # scattered rows (packed huge strides) or no row at all
        zero_shape = list(tensor.shape)
        zero_shape[axis] = 1
        with_zero = torch.cat([tensor, tensor.new_zeros(zero_shape)], dim=axis)
        where = np.where(index < 0, tensor.shape[axis], index)
        tensor = with_zero.index_select(axis, torch.from_numpy(where.astype(np.int64)))
    return tensor


def window_stride(stride: int, extent: int) -> int:
    """The stride the oracle convolves with along one axis: ``min(stride, dilated kernel extent)``.

    With ``stride > extent`` the windows (GroupConvolution) or the scattered
    copies of the kernel (BackpropData) do not overlap, and the gaps between
    them hold nothing but zeros: the oracle packs the windows/copies side by
    side (stride = extent) and maps them back by index, so a stride of 2**40
    costs no more than a stride of ``extent`` (sn-huge-strides).
    """
    return min(stride, extent)


def convolution_input_index(outputs: range, stride: int, extent: int, pads_begin: int,
                            first_row: int, rows: int) -> np.ndarray:
    """GroupConvolution, one axis: the input rows (of ``rows`` held, the first being global row
    ``first_row``) that the packed windows of output positions ``outputs`` read; -1 = a pad zero.

    Packed position ``g`` holds window ``outputs[0] + g // w``, tap offset ``g % w``
    (``w = window_stride``), i.e. padded position ``(outputs[0] + g // w) * stride + g % w``,
    input row ``padded - pads_begin`` (a negative pad, a case's opt-in, crops the input).
    """
    packed = window_stride(stride, extent)
    position = np.arange((len(outputs) - 1) * packed + extent, dtype=np.int64)
    padded = (outputs.start + position // packed) * stride + position % packed
    row = padded - pads_begin - first_row
    return np.where((row >= 0) & (row < rows), row, -1)


def transposed_output_index(outputs: range, stride: int, extent: int, pads_begin: int,
                            first_row: int, rows: int) -> np.ndarray:
    """BackpropData, one axis: where output positions ``outputs`` are in the transposed convolution
    of input rows ``first_row .. first_row + rows - 1`` computed with ``window_stride``; -1 = zero.

    Output ``o`` is position ``o + pads_begin`` of the spec's full (uncropped) result
    ``stride*(X-1) + extent`` long, extended by zeros (``output_padding``, or a negative
    crop) wherever no input row lands.
    """
    full = np.arange(outputs.start, outputs.stop, dtype=np.int64) + pads_begin
    if stride <= extent:   # computed with the real stride: the full result, from row first_row on
        local = full - first_row * stride
        return np.where((local >= 0) & (local < stride * (rows - 1) + extent), local, -1)
    row = full // stride   # packed: row r's kernel copy at r*extent .. r*extent + extent - 1
    offset = full - row * stride
    local_row = row - first_row
    inside = (full >= 0) & (local_row >= 0) & (local_row < rows) & (offset < extent)
    return np.where(inside, local_row * extent + offset, -1)


def _extents(case: Case) -> tuple[int, ...]:
    return tuple(shapes.dilated_kernel(k, d) for k, d in zip(case.kernel_shape[3:], case.dilations))


def _convolution_window(case: Case, geometry: shapes.Geometry, data: torch.Tensor, weight: torch.Tensor,
                        outputs: tuple[range, ...], first_rows: tuple[int, ...]) -> torch.Tensor:
    """GroupConvolution output positions ``outputs`` (per spatial axis) from ``data``, whose
    axis ``a`` starts at global row ``first_rows[a]``; ``weight`` in torch's layout."""
    extents = _extents(case)
    gathered = _take(data, {
        axis + 2: convolution_input_index(out, stride, extent, begin, first, data.shape[axis + 2])
        for axis, (out, stride, extent, begin, first) in enumerate(
            zip(outputs, case.strides, extents, geometry.pads_begin, first_rows))})
    strides = tuple(window_stride(s, e) for s, e in zip(case.strides, extents))
    return _conv(case.spatial_rank)(_fast_layout(gathered), _fast_layout(weight), stride=strides,
                                    dilation=case.dilations, groups=geometry.groups).contiguous()


def _transposed_window(case: Case, geometry: shapes.Geometry, data: torch.Tensor, weight: torch.Tensor,
                       outputs: tuple[range, ...], first_rows: tuple[int, ...]) -> torch.Tensor:
    """BackpropData output positions ``outputs`` (per spatial axis) from ``data``, whose axis ``a``
    starts at global row ``first_rows[a]``; ``weight`` in torch's layout."""
    extents = _extents(case)
    strides = tuple(window_stride(s, e) for s, e in zip(case.strides, extents))
    result = _conv_transpose(case.spatial_rank)(_fast_layout(data), _fast_layout(weight), stride=strides,
                                                dilation=case.dilations, groups=geometry.groups).contiguous()
    return _take(result, {
        axis + 2: transposed_output_index(out, stride, extent, begin, first, data.shape[axis + 2])
        for axis, (out, stride, extent, begin, first) in enumerate(
            zip(outputs, case.strides, extents, geometry.pads_begin, first_rows))})


def _torch_weight(case: Case, geometry: shapes.Geometry, kernel: torch.Tensor) -> torch.Tensor:
    """Spec kernel -> torch's grouped layout: GroupConvolution [G, C_OUT, C_IN, k...] -> [G*C_OUT, C_IN, k...];
    BackpropData [G, C_IN, C_OUT, k...] -> [G*C_IN, C_OUT, k...]."""
    rows = (geometry.groups * geometry.out_channels_per_group if case.op == shapes.GROUP_CONVOLUTION
            else geometry.groups * geometry.in_channels_per_group)
    return kernel.reshape((rows,) + tuple(kernel.shape[2:]))


def apply_op(case: Case, data: torch.Tensor, kernel: torch.Tensor,
             geometry: shapes.Geometry | None = None) -> torch.Tensor:
    """Compute ``case``'s op on float64 torch tensors in the spec's layouts.

    GroupConvolution: the windows of the zero-padded input, gathered by index,
    then a grouped convolution without padding. BackpropData: the grouped
    transposed convolution (uncropped), then the spec's window of it
    (``pads_begin`` cropped, zeros wherever the window reaches past the result:
    ``output_padding``, negative pads, an ``output_shape`` larger than the result).
    """
    geometry = geometry or case.geometry()
    outputs = tuple(range(size) for size in geometry.output_shape[2:])
    first_rows = (0,) * case.spatial_rank
    window = _convolution_window if case.op == shapes.GROUP_CONVOLUTION else _transposed_window
    return window(case, geometry, data, _torch_weight(case, geometry, kernel), outputs, first_rows)


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
    """Output planes [start, stop): only the input rows their windows read, then the windows."""
    stride, extent = case.strides[0], _extents(case)[0]
    rows = data.shape[2]
    first = start * stride - geometry.pads_begin[0]              # input row of the first padded row read
    last = (stop - 1) * stride + extent - geometry.pads_begin[0]  # one past the last
    low, high = min(max(first, 0), rows), min(max(last, 0), rows)
    outputs = (range(start, stop),) + tuple(range(size) for size in geometry.output_shape[3:])
    return _convolution_window(case, geometry, data[:, :, low:high], weight, outputs,
                               (low,) + (0,) * (case.spatial_rank - 1))


def _backprop_data_slab(case, geometry, data, weight, start, stop):
    """Output planes [start, stop): only the input rows that reach them, then the spec's window."""
    stride, extent = case.strides[0], _extents(case)[0]
    rows = data.shape[2]
    full_first = start + geometry.pads_begin[0]   # in the uncropped transposed convolution
    full_last = stop + geometry.pads_begin[0]     # one past
    low = min(rows, max(0, -(-(full_first - extent + 1) // stride)))
    high = max(low, min(rows, (full_last - 1) // stride + 1))
    if high <= low:  # no input row reaches these planes (only output_padding / extension): zeros
        import torch
        shape = list(geometry.output_shape)
        shape[2] = stop - start
        return torch.zeros(shape, dtype=data.dtype)
    outputs = (range(start, stop),) + tuple(range(size) for size in geometry.output_shape[3:])
    return _transposed_window(case, geometry, data[:, :, low:high], weight, outputs,
                              (low,) + (0,) * (case.spatial_rank - 1))


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
        weight = _torch_weight(case, geometry, kernel)
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
