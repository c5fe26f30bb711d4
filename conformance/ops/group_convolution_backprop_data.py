"""GroupConvolutionBackpropData-1 (and, with ``grouped = False``, the formulas
ConvolutionBackpropData-1 reuses).

Spec (GroupConvolutionBackpropData-1.rst): input 1 "data" ``[N, GROUPS * C_IN, Z, Y, X]``,
input 2 "filter" ``[GROUPS, C_IN, C_OUT, Z, Y, X]``, optional input 3 "output_shape" (the
spatial sizes of the output), output ``[N, GROUPS * C_OUT, Z, Y, X]``.
"""
from __future__ import annotations

import math

import numpy as np

from .. import shapes
from . import fuzz
from .base import Op, _join
from .group_convolution import _fits_int64
from .torch_util import conv_transpose, fast_layout, take, window_stride

INT32_MAX = (1 << 31) - 1   # torch's transposed convolution reads dilations as int32
REACH_GRID_ELEMENTS = 1 << 22   # reach: output positions x taps of one axis, above which ones are convolved


def landing_taps(kernel: int, stride: int, dilation: int) -> int:
    """Most kernel taps of one axis that land on one output of a transposed convolution.

    Output o receives tap k from input i when o + pad = i*s + k*d, so the taps
    reaching o satisfy k*d = const (mod s): one residue class mod s/gcd(s, d).
    """
    period = stride // math.gcd(stride, dilation)
    return -(-kernel // period)


def backprop_full_size(x: int, kernel: int, stride: int, dilation: int) -> int:
    """Length of the uncropped transposed convolution: stride*(X-1) + dilated kernel."""
    return stride * (x - 1) + shapes.dilated_kernel(kernel, dilation)


def group_convolution_backprop_data_geometry(data_shape, kernel_shape, strides, pads_begin,
                                             pads_end, dilations, auto_pad="explicit",
                                             output_padding=None, output_shape=None) -> shapes.Geometry:
    """GroupConvolutionBackpropData-1: data [N, G*C_IN, ...], kernel [G, C_IN, C_OUT, ...].

    Without ``output_shape``: pads are the attributes when auto_pad is explicit
    and zero otherwise (the spec's ``if auto_pads != None: pads = 0``; sn-auto-pad-default,
    sn-backprop-auto-pad-no-output-shape), and
    Y = stride*(X-1) + dilated_kernel - pads_begin - pads_end + output_padding.

    With ``output_shape``: the attribute pads are ignored and
    total = stride*(X-1) + dilated_kernel - output_shape + output_padding is
    split by the spec's formula: same_upper puts the odd unit at the *beginning*,
    every other auto_pad (explicit and valid included) at the end
    (sn-same-upper-output-shape, sn-pads-ignored-output-shape, sn-explicit-output-shape,
    sn-valid-output-shape). The spec: "if auto_pads == SameUpper: pads_begin[i] = total_padding[i]
    - (total_padding[i] // 2), pads_end[i] = total_padding[i] // 2".
    """
    groups, c_in, c_out = kernel_shape[0], kernel_shape[1], kernel_shape[2]
    spatial = data_shape[2:]
    kernel = kernel_shape[3:]
    rank = len(spatial)
    output_padding = tuple(output_padding) if output_padding is not None else (0,) * rank
    full = tuple(backprop_full_size(x, k, s, d)
                 for x, k, s, d in zip(spatial, kernel, strides, dilations))
    if output_shape is None:
        if auto_pad == "explicit":
            begin, end = tuple(pads_begin), tuple(pads_end)
        else:
            begin = end = (0,) * rank
        out_spatial = tuple(f - b - e + p for f, b, e, p in zip(full, begin, end, output_padding))
    else:
        begin_list, end_list = [], []
        for f, y, p in zip(full, output_shape, output_padding):
            total = f - y + p
            if auto_pad != "same_upper":
                b = total // 2
                begin_list.append(b)
                end_list.append(total - b)
            else:
                e = total // 2
                end_list.append(e)
                begin_list.append(total - e)
        begin, end = tuple(begin_list), tuple(end_list)
        out_spatial = tuple(output_shape)
    return shapes.Geometry(groups, c_in, c_out, begin, end,
                           (data_shape[0], groups * c_out) + out_spatial, math.prod(kernel),
                           math.prod(landing_taps(k, s, d) for k, s, d in zip(kernel, strides, dilations)))


def transposed_output_index(outputs: range, stride: int, extent: int, pads_begin: int,
                            first_row: int, rows: int) -> np.ndarray:
    """One axis: where output positions ``outputs`` are in the transposed convolution
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


SPEC_SCAFFOLD = """\
# GroupConvolutionBackpropData-1 cases, written in the spec's terms.
# Check with: ov-conformance validate {path}
op: GroupConvolutionBackpropData
cases:
  - name: my_case                # no spaces, '[', ']', ':' or '/'
    description: what this case shows
    data: [1, 8, 5, 5]           # [N, GROUPS*C_IN, spatial...]: rank 3, 4 or 5
    kernel: [4, 2, 3, 3, 3]      # [GROUPS, C_IN, C_OUT, k...]: rank = data rank + 1
    strides: [2, 2]              # >= 1; one integer for all axes, or one per spatial axis
    dilations: [1, 1]            # >= 1
    pads_begin: [1, 1]           # >= 0, cropped from the output; used when auto_pad is explicit
    pads_end: [1, 1]
    output_padding: [1, 1]       # >= 0 (any size: zeros past the full result), added at the end
    auto_pad: explicit           # explicit, same_upper, same_lower, valid
    # output_shape: [10, 10]     # optional 3rd input: the output's spatial sizes
"""

PYTORCH_SCAFFOLD = """\
# GroupConvolutionBackpropData-1 cases, written as torch.nn.ConvTranspose2d.
# Check with: ov-conformance validate {path}
op: GroupConvolutionBackpropData
defaults:
  style: pytorch
cases:
  - name: my_case                # nn.ConvTranspose2d(8, 4, kernel_size=3, stride=2, padding=1, output_padding=1, groups=2)
    input_shape: [1, 8, 5, 5]    # [N, C, H, W]
    in_channels: 8               # divisible by groups
    out_channels: 4              # divisible by groups
    groups: 2
    kernel_size: 3
    stride: 2
    padding: 1                   # int or [h, w] (no 'same'/'valid' for ConvTranspose)
    output_padding: 1            # < stride or < dilation
    dilation: 1
"""


class GroupConvolutionBackpropData(Op):
    name = "GroupConvolutionBackpropData"
    spec = "GroupConvolutionBackpropData-1"
    template = "GroupConvolutionBackpropData"
    transposed = True
    sibling = "ConvolutionBackpropData"
    fields = ("output_padding", "output_shape", "output_shape_input")
    kernel_layout = "[GROUPS, C_IN, C_OUT, ...]"
    scaffolds = {"spec": SPEC_SCAFFOLD, "pytorch": PYTORCH_SCAFFOLD}

    def channels(self, kernel_shape):
        groups, c_in, c_out = self.grouped_shape(kernel_shape)[:3]
        return groups, c_in, c_out

    def geometry(self, case) -> shapes.Geometry:
        return group_convolution_backprop_data_geometry(
            case.data_shape, self.grouped_shape(case.kernel_shape), case.strides, case.pads_begin, case.pads_end,
            case.dilations, case.auto_pad, case.output_padding, case.output_shape)

    def multiply_adds(self, case, geometry) -> int:
        """Every data element times every tap of its group's kernels (C_OUT per group x kernel
        volume): the uncropped transposed convolution, the work of the forward convolution it is the
        data gradient of (benchdnn's deconvolution count). ``accumulation_length`` is only an upper
        bound per output element here (stride gaps, crops), so output elements x it would overcount."""
        return math.prod(case.data_shape) * geometry.out_channels_per_group * geometry.kernel_volume

    def attributes(self, case) -> dict[str, str]:
        attrs = super().attributes(case)
        attrs["output_padding"] = _join(case.output_padding or (0,) * case.spatial_rank)
        return attrs

    def extra_inputs(self, case):
        if case.output_shape is None:
            return []
        return [("output_shape", np.asarray(case.output_shape, dtype=np.int64),
                 case.output_shape_input == "parameter")]

    def resolve_fields(self, spec_values, axes, error, show):
        # Any output_padding >= 0: the spec sets no upper bound; beyond max(stride, dilation) the
        # added elements are zeros (docs/spec-notes.md#sn-output-padding-range).
        resolved = {"output_padding": axes("output_padding", 0), "output_shape": None}
        if spec_values.get("output_shape") is not None:
            output_shape = spec_values["output_shape"]
            rank = len(resolved["output_padding"])
            if isinstance(output_shape, int) or len(output_shape) != rank:
                raise error("output_shape", f"needs exactly {rank} spatial sizes (one per axis), "
                                            f"got {show(output_shape)}")
            resolved["output_shape"] = tuple(output_shape)
        return resolved

    def derived_sizes(self, size, extent, stride, pads):
        return {**super().derived_sizes(size, extent, stride, pads), "strides": (size - 1) * stride + extent}

    def oracle_limit(self, case):
        # Strides beyond the dilated kernel are computed by index (the windows are packed);
        # dilations still reach torch's transposed convolution.
        if max(case.dilations) > INT32_MAX:
            return "dilations", (f"{max(case.dilations)} is above 2^31 - 1: the oracle's transposed "
                                 f"convolution (torch) reads BackpropData's dilations as 32-bit integers "
                                 f"(the harness's limit, README 'Limits')")
        return None

    def window(self, case, geometry, data, weight, outputs, first_rows):
        """The grouped transposed convolution (uncropped), then the spec's window of it:
        ``pads_begin`` cropped, zeros wherever the window reaches past the result
        (``output_padding``, negative pads, an ``output_shape`` larger than the result)."""
        extents = self.extents(case)
        strides = tuple(window_stride(s, e) for s, e in zip(case.strides, extents))
        result = conv_transpose(case.spatial_rank)(fast_layout(data), fast_layout(weight), stride=strides,
                                                   dilation=case.dilations, groups=geometry.groups).contiguous()
        return take(result, {
            axis + 2: transposed_output_index(out, stride, extent, begin, first, data.shape[axis + 2])
            for axis, (out, stride, extent, begin, first) in enumerate(
                zip(outputs, case.strides, extents, geometry.pads_begin, first_rows))})

    def reach(self, case, geometry):
        """An output position ``o`` is reached when some tap lands on it: data row ``i`` and tap ``k``
        with ``i * stride + k * dilation = o + pads_begin`` (a position of the uncropped result; none
        lands past it, in ``output_padding`` or an output_shape beyond it)."""
        axes = []
        for size, rows, taps, stride, dilation, begin in zip(
                geometry.output_shape[2:], case.data_shape[2:], self.kernel_spatial(case.kernel_shape),
                case.strides, case.dilations, geometry.pads_begin):
            if size * taps > REACH_GRID_ELEMENTS or not _fits_int64(size + abs(begin) + taps * dilation
                                                                    + rows * stride):
                return None
            # landing[o, k]: where data row i would have to be, times stride, for tap k to land on o
            landing = (np.arange(size, dtype=np.int64)[:, None] + begin
                       - np.arange(taps, dtype=np.int64)[None, :] * dilation)
            axes.append(((landing >= 0) & (landing % stride == 0) & (landing // stride < rows)).any(axis=1))
        return tuple(axes)

    def slab(self, case, geometry, data, weight, start, stop):
        """Only the input rows that reach the slab's planes, then the spec's window."""
        stride, extent = case.strides[0], self.extents(case)[0]
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
        return self.window(case, geometry, data[:, :, low:high], weight, outputs,
                           (low,) + (0,) * (case.spatial_rank - 1))

    def intermediate_elements(self, case, geometry) -> int:
        """The uncropped transposed result."""
        return math.prod(geometry.output_shape[:2]) * math.prod(
            backprop_full_size(x, k, s, d) for x, k, s, d in zip(
                case.data_shape[2:], self.kernel_spatial(case.kernel_shape), case.strides, case.dilations))

    def slab_intermediate_fraction(self, input_fraction, planes, depth):
        return min(1.0, 2 * planes / depth)   # the uncropped slab

    def grouped_layout(self, groups, c_in, c_out, spatial):
        return (groups, c_in, c_out) + tuple(spatial)

    def pytorch_fields(self, values, rank, per_axis):
        return {"output_padding": per_axis(values, "output_padding", rank, 0)}

    def strategy(self, negative_pads: bool = True, output_shape: bool = True, **_):
        return fuzz.configs(self, fuzz.backprop_fields, negative_pads=negative_pads, output_shape=output_shape)

    def edge_strategy(self, huge_strides: bool = True):
        return fuzz.edge_configs(self, fuzz.backprop_edge_fields, huge_strides=huge_strides)

    def fuzz_fields(self, rng, max_channels):
        return fuzz.backprop_draw(rng, self, max_channels)

    def fuzz_classes(self, params):
        return fuzz.backprop_classes(params)


OP = GroupConvolutionBackpropData()
